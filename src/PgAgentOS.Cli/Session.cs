using Npgsql;
using PgAgentOS.Client;

namespace PgAgentOS.Cli;

/// <summary>A tenant a command acts for.</summary>
public sealed record TenantRef(Guid Id, string Name);

/// <summary>
/// The database of one invocation: a data source, an unbound client (platform administrator
/// calls such as listing tenants) and the tenant-bound clients the commands use.
/// </summary>
public sealed class Session : IAsyncDisposable
{
    private Session(NpgsqlDataSource dataSource, NpgsqlConnectionStringBuilder target)
    {
        DataSource = dataSource;
        Target = target;
        Client = new AosClient(dataSource);
    }

    /// <summary>The data source.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>Where it connects.</summary>
    public NpgsqlConnectionStringBuilder Target { get; }

    /// <summary>A client without a tenant binding.</summary>
    public AosClient Client { get; }

    /// <summary>Opens the database named by --db, AOS_DATABASE_URL or the embedded cluster.</summary>
    public static async Task<Session> OpenAsync(CliContext ctx, AosSettings settings, string? dataDir = null, CancellationToken ct = default)
    {
        var cs = await DbTarget.ResolveAsync(ctx, settings, dataDir, ct: ct);
        return Open(cs);
    }

    /// <summary>A session over a connection string.</summary>
    public static Session Open(NpgsqlConnectionStringBuilder cs)
    {
        ArgumentNullException.ThrowIfNull(cs);
        return new Session(AosClient.CreateDataSource(cs.ConnectionString), cs);
    }

    /// <summary>A client acting for a tenant.</summary>
    public AosClient For(TenantRef tenant) => Client.ForTenant((tenant ?? throw new ArgumentNullException(nameof(tenant))).Id);

    /// <summary>
    /// The tenant named by --tenant or AOS_TENANT (a name or an id); without either, the only
    /// tenant there is. Anything else is one clear error.
    /// </summary>
    public async Task<TenantRef> TenantAsync(CliContext ctx, string? option, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var given = option ?? ctx.Env("AOS_TENANT");
        if (!string.IsNullOrWhiteSpace(given))
        {
            return await FindTenantAsync(given.Trim(), ct)
                ?? throw new CliException($"there is no tenant '{given}'", ExitCodes.NotFound, "aos tenant list shows the tenants.");
        }
        var all = await Client.ListTenantsAsync(ct);
        return all.Count switch
        {
            1 => new TenantRef(all[0].TenantId, all[0].Name),
            0 => throw new CliException("there are no tenants yet", ExitCodes.NotFound,
                "Create one with aos tenant create NAME, or run aos demo."),
            _ => throw new CliException(
                $"{all.Count} tenants exist ({string.Join(", ", all.Take(5).Select(t => t.Name))}{(all.Count > 5 ? ", ..." : "")}), so say which one",
                ExitCodes.Usage, "Pass --tenant NAME or set AOS_TENANT."),
        };
    }

    /// <summary>A tenant by name or id, or null.</summary>
    public async Task<TenantRef?> FindTenantAsync(string nameOrId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(nameOrId);
        if (Guid.TryParse(nameOrId, out var id))
        {
            var t = await Client.GetTenantAsync(id, ct);
            return t is null ? null : new TenantRef(t.TenantId, t.Name);
        }
        var found = await Client.FindTenantAsync(nameOrId, ct);
        return found is null ? null : new TenantRef(found.Value, nameOrId);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await DataSource.DisposeAsync();
    }
}

/// <summary>Ids as people type them: a whole id, an id prefix (8 characters are plenty), or for agents and personas a name.</summary>
public static class Ids
{
    /// <summary>The word for a kind.</summary>
    public static string Noun(AosIdKind kind) => kind switch
    {
        AosIdKind.Conversation => "conversation",
        AosIdKind.Turn => "turn",
        AosIdKind.Step => "step",
        AosIdKind.Agent => "agent",
        AosIdKind.Persona => "persona",
        _ => kind.ToString().ToLowerInvariant(),
    };

    /// <summary>The first 8 characters of an id, as tables show it.</summary>
    public static string Short(Guid id) => id.ToString("N")[..8];

    /// <summary>The first 8 characters of an id, as tables show it.</summary>
    public static string Short(Guid? id) => id is null ? "-" : Short(id.Value);

    /// <summary>
    /// Resolves what a person typed to one id of the bound tenant. Names work for agents and
    /// personas. Unknown, ambiguous or malformed input is a <see cref="CliException"/>.
    /// </summary>
    public static async Task<Guid> ResolveAsync(AosClient client, AosIdKind kind, string text, CancellationToken ct, TenantRef? tenant = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(text);
        var noun = Noun(kind);
        var where = tenant is null ? "this tenant" : $"tenant {tenant.Name}";
        text = text.Trim();
        if (Guid.TryParse(text, out var id))
        {
            return id;
        }
        if (kind is AosIdKind.Agent or AosIdKind.Persona)
        {
            var byName = kind == AosIdKind.Agent ? await client.FindAgentAsync(text, ct) : await client.FindPersonaAsync(text, ct);
            if (byName is not null)
            {
                return byName.Value;
            }
        }
        var hex = text.Replace("-", "", StringComparison.Ordinal);
        if (hex.Length >= 4 && hex.Length < 32 && hex.All(Uri.IsHexDigit))
        {
            var matches = await client.MatchIdPrefixAsync(kind, hex, 2, ct);
            return matches.Count switch
            {
                1 => matches[0],
                0 => throw new CliException($"no {noun} of {where} has an id starting with {text}", ExitCodes.NotFound,
                    HintFor(kind)),
                _ => throw new CliException($"more than one {noun} has an id starting with {text}", ExitCodes.Usage,
                    "Type more characters of the id."),
            };
        }
        if (kind is AosIdKind.Agent or AosIdKind.Persona)
        {
            throw new CliException($"there is no {noun} named '{text}' in {where}", ExitCodes.NotFound, HintFor(kind));
        }
        throw new CliException($"'{text}' is not a {noun} id", ExitCodes.Usage,
            "Give the id (a UUID, or its first 8 characters as tables show it).");
    }

    private static string HintFor(AosIdKind kind) => kind switch
    {
        AosIdKind.Agent => "aos agent list shows the agents (pass --tenant for another tenant).",
        AosIdKind.Persona => "aos persona list shows the personas (pass --tenant for another tenant).",
        AosIdKind.Conversation => "aos agent show AGENT lists its conversations (pass --tenant for another tenant).",
        AosIdKind.Step => "aos timeline CONVERSATION and aos approvals show step ids (pass --tenant for another tenant).",
        _ => "aos timeline CONVERSATION shows turn ids (pass --tenant for another tenant).",
    };
}
