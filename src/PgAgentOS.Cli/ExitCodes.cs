namespace PgAgentOS.Cli;

/// <summary>The exit codes of aos (documented in docs/cli.md).</summary>
public static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>An unexpected failure.</summary>
    public const int Failure = 1;

    /// <summary>Bad usage: an unknown flag, a malformed argument.</summary>
    public const int Usage = 2;

    /// <summary>The thing named does not exist (or belongs to another tenant).</summary>
    public const int NotFound = 3;

    /// <summary>The thing is not in a state that allows this (for example approving a step that is not waiting).</summary>
    public const int Conflict = 4;

    /// <summary>Not allowed: a permission or tenant check refused it.</summary>
    public const int Denied = 5;

    /// <summary>The database cannot be reached.</summary>
    public const int Unavailable = 6;

    /// <summary>A prerequisite is missing: PostgreSQL too old, pgvector absent, kernel not installed.</summary>
    public const int Prerequisite = 7;

    /// <summary>The turn ended without an answer (failed, cancelled, dead).</summary>
    public const int TurnFailed = 8;

    /// <summary>The event log (or a checkpoint) does not verify: something was changed.</summary>
    public const int Tampered = 9;

    /// <summary>Waiting ran out (the work goes on in the database).</summary>
    public const int TimedOut = 10;

    /// <summary>Interrupted (Ctrl+C).</summary>
    public const int Interrupted = 130;
}
