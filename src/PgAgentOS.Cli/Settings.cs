using System.ComponentModel;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli;

/// <summary>Options every command takes.</summary>
public class AosSettings : CommandSettings
{
    /// <summary>--db URL.</summary>
    [CommandOption("--db <URL>")]
    [Description("Database to use (postgresql://user:password@host:port/db). Default: $AOS_DATABASE_URL, else the embedded cluster.")]
    public string? Db { get; init; }

    /// <summary>--json.</summary>
    [CommandOption("--json")]
    [Description("Write machine-readable JSON to standard output.")]
    public bool Json { get; init; }
}

/// <summary>Options of the commands that manage the embedded cluster.</summary>
public class ClusterSettings : AosSettings
{
    /// <summary>--data-dir DIR.</summary>
    [CommandOption("--data-dir <DIR>")]
    [Description("Data directory of the embedded cluster. Default: $AOS_DATA_DIR, else ~/.local/share/pgagentos/cluster (/var/lib/pgagentos/cluster as root).")]
    public string? DataDir { get; init; }
}

/// <summary>Options of the commands that act for a tenant.</summary>
public class TenantSettings : AosSettings
{
    /// <summary>--tenant NAME|ID.</summary>
    [CommandOption("--tenant <TENANT>")]
    [Description("Tenant to act for, by name or id. Default: $AOS_TENANT, else the only tenant there is.")]
    public string? Tenant { get; init; }
}
