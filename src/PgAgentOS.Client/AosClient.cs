using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;

namespace PgAgentOS.Client;

/// <summary>How calls of a client act for a tenant.</summary>
public abstract record TenantBinding
{
    /// <summary>No binding: worker calls (the lease token decides), or a connection bound by the caller.</summary>
    public static readonly TenantBinding None = new NoBinding();

    /// <summary>aos_auth.set_tenant(tenant) for each transaction (administrators, mapped logins).</summary>
    public static TenantBinding Tenant(Guid tenantId) => new TenantIdBinding(tenantId);

    /// <summary>aos_auth.authenticate(api key) for each transaction.</summary>
    public static TenantBinding ApiKey(string apiKey) => new ApiKeyBinding(apiKey);

    internal sealed record NoBinding : TenantBinding;

    internal sealed record TenantIdBinding(Guid TenantId) : TenantBinding;

    internal sealed record ApiKeyBinding(string Key) : TenantBinding
    {
        public override string ToString() => "ApiKeyBinding { Key = **** }";
    }
}

/// <summary>
/// The typed SDK of the pgAgentOS kernel. Every method is one call of a kernel function in one
/// transaction (bound to the client's tenant), or joins the caller's transaction
/// (<see cref="InTransaction"/>). Kernel errors become <see cref="AosException"/> subclasses.
/// </summary>
public sealed partial class AosClient : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _dataSource;
    private readonly bool _ownsDataSource;
    private readonly NpgsqlConnection? _connection;
    private readonly NpgsqlTransaction? _transaction;

    /// <summary>A client over a data source (pooled connections).</summary>
    public AosClient(NpgsqlDataSource dataSource, TenantBinding? binding = null)
        : this(dataSource, false, binding)
    {
    }

    private AosClient(NpgsqlDataSource dataSource, bool owns, TenantBinding? binding)
    {
        _dataSource = dataSource ?? throw new ArgumentNullException(nameof(dataSource));
        _ownsDataSource = owns;
        Binding = binding ?? TenantBinding.None;
    }

    private AosClient(NpgsqlConnection connection, NpgsqlTransaction? transaction, TenantBinding binding)
    {
        _connection = connection;
        _transaction = transaction;
        Binding = binding;
    }

    /// <summary>A client for a connection string or postgresql:// URL; it owns its data source.</summary>
    public static AosClient Create(string connectionStringOrUrl, TenantBinding? binding = null) =>
        new(CreateDataSource(connectionStringOrUrl), true, binding);

    /// <summary>
    /// A data source suited to the SDK: pooled connections are not reset with DISCARD ALL when they
    /// are reused (No Reset On Close). The reset would throw away the plans the kernel's functions
    /// have cached and cost one more statement per call; the SDK never leaves session state behind
    /// (it binds tenants for one transaction only), so there is nothing to reset. Do not use such a
    /// data source for connections on which you bind a tenant for the whole session yourself.
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string connectionStringOrUrl)
    {
        var b = ConnectionUrl.Parse(connectionStringOrUrl);
        b.ApplicationName ??= "pgagentos";
        b.NoResetOnClose = true;
        return NpgsqlDataSource.Create(b.ConnectionString);
    }

    /// <summary>How this client's calls act for a tenant.</summary>
    public TenantBinding Binding { get; }

    /// <summary>The data source (null for a client joined to a transaction).</summary>
    public NpgsqlDataSource? DataSource => _dataSource;

    /// <summary>The same database, acting for a tenant (set_tenant per transaction).</summary>
    public AosClient ForTenant(Guid tenantId) => WithBinding(TenantBinding.Tenant(tenantId));

    /// <summary>The same database, acting as the principal of an API key.</summary>
    public AosClient WithApiKey(string apiKey) => WithBinding(TenantBinding.ApiKey(apiKey));

    /// <summary>The same database with another binding.</summary>
    public AosClient WithBinding(TenantBinding binding) =>
        _dataSource is not null ? new AosClient(_dataSource, false, binding) : new AosClient(_connection!, _transaction, binding);

    /// <summary>
    /// A client whose calls run on the caller's connection and transaction: they commit or roll
    /// back with it. The tenant binding (if any) is made local to that transaction.
    /// </summary>
    public AosClient InTransaction(NpgsqlConnection connection, NpgsqlTransaction? transaction) =>
        new(connection ?? throw new ArgumentNullException(nameof(connection)), transaction, Binding);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_ownsDataSource && _dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }
    }

    // ------------------------------------------------------------------------------------------
    // Execution
    // ------------------------------------------------------------------------------------------

    /// <summary>Runs one SQL statement (after the binding) and reads its first column of the first row.</summary>
    internal Task<T?> ScalarAsync<T>(string sql, CancellationToken ct, params NpgsqlParameter[] parameters) =>
        ScalarAsync<T>(sql, ct, asyncCommit: false, before: null, parameters);

    /// <summary>
    /// Runs one statement (after the binding) and returns the first column of its first row; with
    /// <paramref name="asyncCommit"/> its implicit transaction commits without waiting for the WAL flush;
    /// <paramref name="before"/> run first, in the same transaction.
    /// </summary>
    internal async Task<T?> ScalarAsync<T>(string sql, CancellationToken ct, bool asyncCommit, IEnumerable<NpgsqlBatchCommand>? before,
        params NpgsqlParameter[] parameters)
    {
        return await RunAsync(async (conn, tx) =>
        {
            await using var batch = BindBatch(conn, tx);
            if (asyncCommit)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand(AsyncCommitSql));
            }
            foreach (var command in before ?? [])
            {
                batch.BatchCommands.Add(command);
            }
            var cmd = new NpgsqlBatchCommand(sql);
            cmd.Parameters.AddRange(parameters);
            batch.BatchCommands.Add(cmd);
            var value = await batch.ExecuteScalarLastAsync(ct);
            return value is null or DBNull ? default : (T)value;
        }, ct);
    }

    /// <summary>
    /// Makes the batch's implicit transaction commit without waiting for its WAL flush. set_config
    /// rather than SET LOCAL: PostgreSQL 15 honours SET LOCAL in a pipelined batch but logs a
    /// warning ("can only be used in transaction blocks") every time.
    /// </summary>
    internal const string AsyncCommitSql = "SELECT set_config('synchronous_commit', 'off', true)";

    /// <summary>Runs a query (after the binding) and maps each row.</summary>
    internal async Task<List<T>> QueryAsync<T>(string sql, Func<NpgsqlDataReader, T> map, CancellationToken ct, params NpgsqlParameter[] parameters)
    {
        return await RunAsync(async (conn, tx) =>
        {
            await using var batch = BindBatch(conn, tx);
            var cmd = new NpgsqlBatchCommand(sql);
            cmd.Parameters.AddRange(parameters);
            batch.BatchCommands.Add(cmd);
            await using var reader = await batch.ExecuteReaderAsync(ct);
            if (batch.BatchCommands.Count > 1)
            {
                await reader.NextResultAsync(ct); // past the binding's result
            }
            var list = new List<T>();
            while (await reader.ReadAsync(ct))
            {
                list.Add(map(reader));
            }
            return list;
        }, ct);
    }

    /// <summary>
    /// Runs work on a pooled connection, or on the joined connection and transaction. Work that is one
    /// batch (the binding and the call) needs no explicit transaction: PostgreSQL runs the statements
    /// of a batch in one implicit transaction, so the call costs one round trip and one commit.
    /// </summary>
    internal async Task<T> RunAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction?, Task<T>> work, CancellationToken ct)
    {
        try
        {
            if (_connection is not null)
            {
                return await work(_connection, _transaction);
            }
            await using var conn = await _dataSource!.OpenConnectionAsync(ct);
            return await work(conn, null);
        }
        catch (PostgresException e)
        {
            throw AosException.From(e);
        }
    }

    private NpgsqlBatch BindBatch(NpgsqlConnection conn, NpgsqlTransaction? tx)
    {
        var batch = new NpgsqlBatch(conn, tx);
        switch (Binding)
        {
            case TenantBinding.TenantIdBinding t:
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT aos_auth.set_tenant($1, true)")
                {
                    Parameters = { new NpgsqlParameter { Value = t.TenantId, NpgsqlDbType = NpgsqlDbType.Uuid } },
                });
                break;
            case TenantBinding.ApiKeyBinding k:
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT aos_auth.authenticate($1, true)")
                {
                    Parameters = { new NpgsqlParameter { Value = k.Key, NpgsqlDbType = NpgsqlDbType.Text } },
                });
                break;
        }
        return batch;
    }

    internal static NpgsqlParameter P(object? value, NpgsqlDbType type) => new() { Value = value ?? DBNull.Value, NpgsqlDbType = type };

    internal static NpgsqlParameter Uuid(Guid? value) => P(value, NpgsqlDbType.Uuid);

    internal static NpgsqlParameter Text(string? value) => P(value, NpgsqlDbType.Text);

    internal static NpgsqlParameter Jsonb(object? value) => P(value switch
    {
        null => null,
        string s => s,
        JsonNode n => n.ToJsonString(),
        JsonElement e => e.GetRawText(),
        JsonDocument d => d.RootElement.GetRawText(),
        _ => JsonSerializer.Serialize(value, AosJson.Options),
    }, NpgsqlDbType.Jsonb);

    internal static T? Parse<T>(string? json) => json is null ? default : JsonSerializer.Deserialize<T>(json, AosJson.Options);
}

/// <summary>Helpers on NpgsqlBatch.</summary>
internal static class BatchExtensions
{
    /// <summary>Executes a batch and returns the first column of the first row of its last statement.</summary>
    public static async Task<object?> ExecuteScalarLastAsync(this NpgsqlBatch batch, CancellationToken ct)
    {
        await using var reader = await batch.ExecuteReaderAsync(ct);
        object? value = null;
        var index = 0;
        do
        {
            index++;
            if (index == batch.BatchCommands.Count && await reader.ReadAsync(ct))
            {
                value = reader.IsDBNull(0) ? null : reader.GetValue(0);
            }
        }
        while (await reader.NextResultAsync(ct));
        return value;
    }
}
