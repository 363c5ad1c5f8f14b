namespace PgAgentOS.Security.Tests;

/// <summary>The spec's Quick Start, run by an administrator login through psql, still works under the fenced privileges.</summary>
public sealed class QuickStartTests(KernelDatabase db) : IClassFixture<KernelDatabase>
{
    [Fact]
    public async Task TheQuickStartRunsAsWrittenForAnAdministrator()
    {
        var r = await db.Cluster.PsqlAsync(db.Name, TestCluster.Admin, """
            INSERT INTO aos_auth.tenant (name, display_name)
            VALUES ('my_company', 'My Company')
            RETURNING tenant_id \gset
            SELECT aos_auth.set_tenant(:'tenant_id');
            INSERT INTO aos_persona.persona (
                tenant_id, name, system_prompt, traits
            ) VALUES (
                aos_auth.current_tenant(),
                'helpful_assistant',
                'You are a helpful AI assistant. Answer concisely.',
                '{"helpful": true, "concise": true}'
            ) RETURNING persona_id \gset
            SELECT aos_agent.create_agent(
                p_tenant_id := aos_auth.current_tenant(),
                p_name := 'research_agent',
                p_persona_id := :'persona_id',
                p_tools := ARRAY['web_search', 'code_execute'],
                p_config := '{"auto_approve_tools": false}'
            ) AS agent_id \gset
            SELECT aos_agent.start_conversation(p_agent_id := :'agent_id') AS conversation_id \gset
            SELECT aos_agent.send_message(
                p_conversation_id := :'conversation_id',
                p_message := 'How do I do async programming in Python?'
            ) AS turn_id \gset
            SELECT count(*) AS steps FROM aos_agent.realtime_steps \gset
            \echo steps=:steps
            SELECT count(*) FROM aos_agent.tool_call_queue;
            UPDATE aos_persona.persona SET traits = '{"helpful": true}' WHERE name = 'helpful_assistant';
            """);
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        Assert.Contains("steps=1", r.StdOut, StringComparison.Ordinal);
    }
}
