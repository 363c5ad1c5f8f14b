using Npgsql;

namespace PgAgentOS.Client;

/// <summary>What kind of failure the kernel reported (see docs/errors.md).</summary>
public enum AosErrorKind
{
    /// <summary>Anything else.</summary>
    Other,
    /// <summary>A NULL, empty, malformed, out-of-range or oversized argument (22xxx, AO010).</summary>
    InvalidArgument,
    /// <summary>An unknown id, or an id of another tenant (AO002).</summary>
    NotFound,
    /// <summary>A transition the state machine does not allow (AO003, AO007, AO008, AO009), a name taken (AO012), something inactive (AO013) or immutable (AO014).</summary>
    Conflict,
    /// <summary>The worker's lease on the turn is gone: another worker owns it now (AO004).</summary>
    LeaseLost,
    /// <summary>Not allowed: no tenant bound, not permitted, not approved, skill not granted (AO001, AO005, AO006, AO011, 42501).</summary>
    Denied,
}

/// <summary>An error raised by the pgAgentOS kernel, with its SQLSTATE, message and hint.</summary>
public class AosException : Exception
{
    /// <summary>An error.</summary>
    public AosException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
        : base(message, inner)
    {
        SqlState = sqlState;
        Hint = hint;
        Detail = detail;
        Kind = KindOf(sqlState);
    }

    /// <summary>The SQLSTATE (our own codes are AO001...).</summary>
    public string SqlState { get; }

    /// <summary>What to do about it.</summary>
    public string? Hint { get; }

    /// <summary>More detail, when the kernel gave some.</summary>
    public string? Detail { get; }

    /// <summary>The kind of failure.</summary>
    public AosErrorKind Kind { get; }

    /// <summary>The kind of a SQLSTATE.</summary>
    public static AosErrorKind KindOf(string sqlState) => sqlState switch
    {
        "AO002" => AosErrorKind.NotFound,
        "AO003" or "AO007" or "AO008" or "AO009" or "AO012" or "AO013" or "AO014" => AosErrorKind.Conflict,
        "AO004" => AosErrorKind.LeaseLost,
        "AO001" or "AO005" or "AO006" or "AO011" or "42501" => AosErrorKind.Denied,
        "AO010" => AosErrorKind.InvalidArgument,
        _ when sqlState.StartsWith("22", StringComparison.Ordinal) => AosErrorKind.InvalidArgument,
        _ => AosErrorKind.Other,
    };

    /// <summary>Wraps a server error; kernel codes become <see cref="AosException"/> (or a subclass).</summary>
    public static AosException From(PostgresException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return KindOf(e.SqlState) switch
        {
            AosErrorKind.NotFound => new AosNotFoundException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
            AosErrorKind.Conflict => new AosConflictException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
            AosErrorKind.LeaseLost => new LeaseLostException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
            AosErrorKind.Denied => new AosDeniedException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
            AosErrorKind.InvalidArgument => new AosArgumentException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
            _ => new AosException(e.SqlState, e.MessageText, e.Hint, e.Detail, e),
        };
    }
}

/// <summary>Unknown id, or an id of another tenant (AO002).</summary>
public sealed class AosNotFoundException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
    : AosException(sqlState, message, hint, detail, inner);

/// <summary>A transition the state machine refuses (AO003 and friends).</summary>
public sealed class AosConflictException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
    : AosException(sqlState, message, hint, detail, inner);

/// <summary>The worker's lease is gone: stop working on the turn (AO004).</summary>
public sealed class LeaseLostException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
    : AosException(sqlState, message, hint, detail, inner);

/// <summary>Refused: no tenant bound, no permission, no approval, skill not granted.</summary>
public sealed class AosDeniedException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
    : AosException(sqlState, message, hint, detail, inner);

/// <summary>A bad argument.</summary>
public sealed class AosArgumentException(string sqlState, string message, string? hint = null, string? detail = null, Exception? inner = null)
    : AosException(sqlState, message, hint, detail, inner);
