using Npgsql;

namespace PgAgentOS.TestInfrastructure;

/// <summary>Small helpers for tests that speak SQL.</summary>
public static class Sql
{
    /// <summary>First column of the first row, with positional parameters $1, $2, ...</summary>
    public static async Task<T> ScalarAsync<T>(this NpgsqlConnection conn, string sql, params object?[] args)
    {
        await using var cmd = Command(conn, sql, args);
        var v = await cmd.ExecuteScalarAsync();
        return v is null or DBNull ? default! : (T)v;
    }

    /// <summary>Runs a statement; returns rows affected.</summary>
    public static async Task<int> ExecAsync(this NpgsqlConnection conn, string sql, params object?[] args)
    {
        await using var cmd = Command(conn, sql, args);
        return await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>All rows, each as column name → value.</summary>
    public static async Task<List<Dictionary<string, object?>>> RowsAsync(this NpgsqlConnection conn, string sql, params object?[] args)
    {
        await using var cmd = Command(conn, sql, args);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<Dictionary<string, object?>>();
        while (await r.ReadAsync())
        {
            var row = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var i = 0; i < r.FieldCount; i++)
            {
                row[r.GetName(i)] = r.IsDBNull(i) ? null : r.GetValue(i);
            }
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>The first column of every row, as strings.</summary>
    public static async Task<List<string>> ColumnAsync(this NpgsqlConnection conn, string sql, params object?[] args)
    {
        await using var cmd = Command(conn, sql, args);
        await using var r = await cmd.ExecuteReaderAsync();
        var list = new List<string>();
        while (await r.ReadAsync())
        {
            list.Add(r.IsDBNull(0) ? "<null>" : Convert.ToString(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture)!);
        }
        return list;
    }

    /// <summary>Runs SQL and returns the server error it raised (fails the test if it raised none).</summary>
    public static async Task<PostgresException> ErrorAsync(this NpgsqlConnection conn, string sql, params object?[] args)
    {
        try
        {
            await conn.ExecAsync(sql, args);
        }
        catch (PostgresException e)
        {
            return e;
        }
        throw new Xunit.Sdk.XunitException($"expected an error from: {sql}");
    }

    private static NpgsqlCommand Command(NpgsqlConnection conn, string sql, object?[] args)
    {
        var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
        foreach (var a in args)
        {
            cmd.Parameters.Add(a is NpgsqlParameter p ? p : new NpgsqlParameter { Value = a ?? DBNull.Value });
        }
        return cmd;
    }
}
