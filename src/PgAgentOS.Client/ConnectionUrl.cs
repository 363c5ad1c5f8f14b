using System.Globalization;
using Npgsql;

namespace PgAgentOS.Client;

/// <summary>
/// Turns what users type (a <c>postgresql://</c> URL as libpq and psql take it, or an Npgsql
/// key=value connection string) into an Npgsql connection string.
/// </summary>
public static class ConnectionUrl
{
    /// <summary>Parses a URL or a key=value connection string.</summary>
    /// <exception cref="FormatException">The text is neither.</exception>
    public static NpgsqlConnectionStringBuilder Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = text.Trim();
        if (text.Length == 0)
        {
            throw new FormatException("the database URL is empty");
        }

        if (!text.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            && !text.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase))
        {
            if (!text.Contains('=', StringComparison.Ordinal))
            {
                throw new FormatException($"'{Redact(text)}' is not a database URL (expected postgresql://user:password@host:port/database)");
            }
            try
            {
                return new NpgsqlConnectionStringBuilder(text);
            }
            catch (ArgumentException e)
            {
                throw new FormatException($"not a valid connection string: {e.Message}", e);
            }
        }

        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            throw new FormatException($"'{Redact(text)}' is not a valid URL");
        }

        var b = new NpgsqlConnectionStringBuilder();
        if (!string.IsNullOrEmpty(uri.Host))
        {
            b.Host = uri.Host.Trim('[', ']');
        }
        if (uri.Port > 0)
        {
            b.Port = uri.Port;
        }
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            b.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                b.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }
        var db = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (db.Length > 0)
        {
            b.Database = db;
        }
        var query = uri.Query.TrimStart('?');
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            switch (key.ToLowerInvariant())
            {
                case "sslmode":
                    b.SslMode = value.ToLowerInvariant() switch
                    {
                        "disable" => SslMode.Disable,
                        "allow" => SslMode.Allow,
                        "prefer" => SslMode.Prefer,
                        "require" => SslMode.Require,
                        "verify-ca" => SslMode.VerifyCA,
                        "verify-full" => SslMode.VerifyFull,
                        _ => throw new FormatException($"unknown sslmode '{value}'"),
                    };
                    break;
                case "application_name":
                    b.ApplicationName = value;
                    break;
                case "connect_timeout":
                    b.Timeout = int.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "host":
                    b.Host = value;
                    break;
                case "port":
                    b.Port = int.Parse(value, CultureInfo.InvariantCulture);
                    break;
                case "user":
                    b.Username = value;
                    break;
                case "password":
                    b.Password = value;
                    break;
                case "dbname":
                    b.Database = value;
                    break;
                default:
                    try
                    {
                        b[key] = value;
                    }
                    catch (ArgumentException)
                    {
                        throw new FormatException($"unknown connection parameter '{key}' in the URL");
                    }
                    break;
            }
        }
        return b;
    }

    /// <summary>Builds a <c>postgresql://</c> URL.</summary>
    public static string Build(string host, int port, string database, string user, string? password) =>
        string.Create(CultureInfo.InvariantCulture,
            $"postgresql://{Uri.EscapeDataString(user)}{(password is null ? "" : ":" + Uri.EscapeDataString(password))}@{host}:{port}/{Uri.EscapeDataString(database)}");

    /// <summary>The URL or connection string with its password replaced by ****.</summary>
    public static string Redact(string text)
    {
        if (text.StartsWith("postgres", StringComparison.OrdinalIgnoreCase) && text.Contains("://", StringComparison.Ordinal))
        {
            var at = text.LastIndexOf('@');
            var scheme = text.IndexOf("://", StringComparison.Ordinal) + 3;
            if (at > scheme)
            {
                var colon = text.IndexOf(':', scheme);
                if (colon > 0 && colon < at)
                {
                    return text[..(colon + 1)] + "****" + text[at..];
                }
            }
            return text;
        }
        try
        {
            var b = new NpgsqlConnectionStringBuilder(text);
            if (!string.IsNullOrEmpty(b.Password))
            {
                b.Password = "****";
            }
            return b.ConnectionString;
        }
        catch (ArgumentException)
        {
            return "(unparseable connection string)";
        }
    }
}
