using System.Text.Json;

namespace PgAgentOS.Kernel.Tests;

/// <summary>aos_meta: version, model registry, parameter resolution.</summary>
public sealed class MetaTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task TheRegistryHasPresetsForEveryProvider()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        var providers = await conn.ColumnAsync("SELECT DISTINCT provider FROM aos_meta.llm_model_registry ORDER BY 1");
        Assert.Superset(new HashSet<string> { "anthropic", "builtin", "google", "ollama", "openai" }, providers.ToHashSet());
        var priced = await conn.ScalarAsync<long>(
            "SELECT count(*) FROM aos_meta.llm_model_registry WHERE provider IN ('openai','anthropic','google') AND input_price_per_mtok > 0 AND output_price_per_mtok > 0");
        Assert.True(priced >= 6);
        Assert.Equal(1L, await conn.ScalarAsync<long>("SELECT count(*) FROM aos_meta.installed_version"));
    }

    [Fact]
    public async Task ParametersResolveModelThenPersonaThenAgentThenCall()
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        var json = await conn.ScalarAsync<string>("""
            SELECT aos_meta.resolve_model_params(
                aos_meta.find_model('openai', 'gpt-4o'),
                '{"temperature": 0.2, "max_tokens": 1000, "response_format": {"type": "text", "strict": true}}',
                '{"max_tokens": 2000, "top_p": 0.9, "response_format": {"type": "json_object"}}',
                '{"top_p": null, "seed": 7}')::text
            """);
        using var doc = JsonDocument.Parse(json);
        var p = doc.RootElement;
        Assert.Equal(0.2, p.GetProperty("temperature").GetDouble());
        Assert.Equal(2000, p.GetProperty("max_tokens").GetInt32());
        Assert.False(p.TryGetProperty("top_p", out _));
        Assert.Equal(7, p.GetProperty("seed").GetInt32());
        Assert.Equal("json_object", p.GetProperty("response_format").GetProperty("type").GetString());
        Assert.True(p.GetProperty("response_format").GetProperty("strict").GetBoolean());
        Assert.Equal("gpt-4o", p.GetProperty("model").GetString());
        Assert.Equal("openai", p.GetProperty("provider").GetString());
    }

    [Theory]
    [InlineData("SELECT aos_meta.resolve_model_params(NULL)", "22004")]
    [InlineData("SELECT aos_meta.resolve_model_params(gen_random_uuid())", "AO002")]
    [InlineData("SELECT aos_meta.resolve_model_params(aos_meta.find_model('openai','gpt-4o'), '[1,2]')", "22023")]
    [InlineData("SELECT aos_meta.resolve_model_params(aos_meta.find_model('openai','gpt-4o'), '{}', '{\"max_tokens\": 999999}')", "22023")]
    [InlineData("SELECT aos_meta.resolve_model_params(aos_meta.find_model('openai','gpt-4o'), '{}', '{}', '{\"temperature\": 7}')", "22023")]
    [InlineData("SELECT aos_meta.resolve_model_params(aos_meta.find_model('openai','gpt-4o'), '{}', '{}', '{\"max_tokens\": \"many\"}')", "22023")]
    [InlineData("SELECT aos_meta.find_model(NULL, '')", "22023")]
    [InlineData("SELECT aos_meta.find_model('openai', 'gpt-0')", "AO002")]
    public async Task BadParametersAreRefusedWithTheirCode(string sql, string sqlState)
    {
        await using var conn = await db.OpenAsync(TestCluster.App);
        var e = await conn.ErrorAsync(sql);
        Assert.Equal(sqlState, e.SqlState);
        Assert.False(string.IsNullOrEmpty(e.Hint), $"{sqlState} should carry a hint");
    }

    [Fact]
    public async Task OnlyAdministratorsChangeTheRegistry()
    {
        await using var app = await db.OpenAsync(TestCluster.App);
        var e = await app.ErrorAsync("UPDATE aos_meta.llm_model_registry SET input_price_per_mtok = 0");
        Assert.Equal("42501", e.SqlState);

        await using var admin = await db.OpenAsync(TestCluster.Admin);
        await admin.ExecAsync("""
            INSERT INTO aos_meta.llm_model_registry (provider, model_name, context_window, max_output_tokens)
            VALUES ('openai_compatible', 'local-vllm', 32768, 4096)
            """);
        var bad = await admin.ErrorAsync("""
            INSERT INTO aos_meta.llm_model_registry (provider, model_name, context_window, max_output_tokens)
            VALUES ('openai_compatible', 'broken', 1000, 4096)
            """);
        Assert.Equal("23514", bad.SqlState);
    }
}
