using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using PgAgentOS.Client;
using Spectre.Console;
using Spectre.Console.Cli;

namespace PgAgentOS.Cli.Commands;

/// <summary>Options of aos verify.</summary>
public sealed class VerifySettings : TenantSettings
{
    /// <summary>--export.</summary>
    [CommandOption("--export <FILE>")]
    [Description("After verifying, seal the current chain heads into a checkpoint and write it to FILE (keep it outside the database).")]
    public string? Export { get; init; }

    /// <summary>--checkpoint.</summary>
    [CommandOption("--checkpoint <FILE>")]
    [Description("Check an exported checkpoint against the database (detects deleted or rewritten history).")]
    public string? Checkpoint { get; init; }

    /// <inheritdoc />
    public override ValidationResult Validate() =>
        Export is not null && Checkpoint is not null
            ? ValidationResult.Error("--export and --checkpoint do not go together: export a new checkpoint, or check an old one")
            : ValidationResult.Success();
}

/// <summary>aos verify: recomputes the hash chains of the event log; exports and checks checkpoints.</summary>
public sealed class VerifyCommand : AosCommand<VerifySettings>
{
    /// <inheritdoc />
    protected override async Task<int> RunAsync(VerifySettings settings, CancellationToken ct)
    {
        await using var session = await Session.OpenAsync(Ctx, settings, ct: ct);
        if (settings.Checkpoint is not null)
        {
            return await CheckAsync(session, settings, ct);
        }

        List<TenantRef> tenants;
        if (settings.Tenant is not null || Ctx.Env("AOS_TENANT") is not null || settings.Export is not null)
        {
            tenants = [await session.TenantAsync(Ctx, settings.Tenant, ct)];
        }
        else
        {
            tenants = [.. (await session.Client.ListTenantsAsync(ct)).Select(t => new TenantRef(t.TenantId, t.Name))];
        }
        var results = await Output.WithStatusAsync(Ctx, settings.Json, "verifying the event log", async () =>
        {
            var list = new List<(TenantRef Tenant, ChainVerification Result)>();
            foreach (var t in tenants)
            {
                list.Add((t, await session.For(t).VerifyEventChainAsync(ct: ct)));
            }
            return list;
        });
        var ok = results.All(r => r.Result.Ok);

        JsonObject? checkpoint = null;
        if (settings.Export is not null && ok)
        {
            checkpoint = await session.For(tenants[0]).CreateCheckpointAsync(ct);
            try
            {
                await File.WriteAllTextAsync(settings.Export, checkpoint.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException($"cannot write {settings.Export}: {e.Message}", ExitCodes.Failure,
                    $"The checkpoint {checkpoint["checkpoint_no"]} was sealed in the database; export the next one to a writable file.");
            }
        }

        if (settings.Json)
        {
            Output.Json(Ctx, new
            {
                ok,
                tenants = results.Select(r => new
                {
                    tenant = r.Tenant.Name,
                    tenant_id = r.Tenant.Id,
                    ok = r.Result.Ok,
                    chains = r.Result.Chains,
                    events = r.Result.Events,
                    first_bad = r.Result.FirstBad,
                }),
                checkpoint,
            });
        }
        else
        {
            if (results.Count == 0)
            {
                Ctx.Out.WriteLine("No tenants, so no events to verify.");
            }
            else
            {
                var table = new Table().AddColumns("tenant", "chains", "events", "result");
                foreach (var (t, r) in results)
                {
                    table.AddRow(Render.Esc(t.Name), Render.Num(r.Chains), Render.Num(r.Events),
                        r.Ok ? "[green]ok[/]" : $"[red]broken[/]: chain {r.FirstBad?.ChainId} seq {r.FirstBad?.Seq?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}: {Render.Esc(r.FirstBad?.Reason)}");
                }
                Ctx.Console.Write(table);
            }
            if (checkpoint is not null)
            {
                Ctx.Out.WriteLine($"Wrote checkpoint {checkpoint["checkpoint_no"]} of tenant {tenants[0].Name} to {settings.Export}; check it later with aos verify --checkpoint {settings.Export}.");
            }
        }
        if (!ok)
        {
            var bad = results.First(r => !r.Result.Ok);
            throw new CliException($"the event log of tenant {bad.Tenant.Name} does not verify: {bad.Result.FirstBad?.Reason}", ExitCodes.Tampered,
                settings.Export is null ? "Something changed the log outside the kernel; restore from a backup and compare."
                                        : "No checkpoint was exported. Something changed the log outside the kernel; restore from a backup and compare.");
        }
        return ExitCodes.Ok;
    }

    private async Task<int> CheckAsync(Session session, VerifySettings settings, CancellationToken ct)
    {
        JsonObject cp;
        try
        {
            cp = JsonNode.Parse(await File.ReadAllTextAsync(settings.Checkpoint!, ct)) as JsonObject
                ?? throw new CliException($"{settings.Checkpoint} is not a checkpoint (a JSON object)", ExitCodes.Usage);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {settings.Checkpoint}: {e.Message}", ExitCodes.Usage);
        }
        catch (JsonException e)
        {
            throw new CliException($"{settings.Checkpoint} is not valid JSON: {e.Message}", ExitCodes.Usage, "Pass a file written by aos verify --export.");
        }
        if (!Guid.TryParse((string?)cp["tenant_id"], out var tenantId))
        {
            throw new CliException($"{settings.Checkpoint} has no tenant_id, so it is not a checkpoint", ExitCodes.Usage,
                "Pass a file written by aos verify --export.");
        }
        var tenant = await session.FindTenantAsync(tenantId.ToString(), ct)
            ?? throw new CliException($"the checkpoint belongs to tenant {tenantId}, which does not exist here", ExitCodes.NotFound,
                "Check it against the database it came from (--db).");
        var result = await session.For(tenant).VerifyCheckpointAsync(cp, ct);
        var ok = (bool?)result["ok"] == true;
        if (settings.Json)
        {
            result["tenant"] = tenant.Name;
            Output.Json(Ctx, result);
        }
        else if (ok)
        {
            Ctx.Out.WriteLine($"Checkpoint {cp["checkpoint_no"]} of tenant {tenant.Name} verifies: the history it sealed is intact.");
        }
        if (!ok)
        {
            throw new CliException($"checkpoint {cp["checkpoint_no"]} of tenant {tenant.Name} does not verify: {(string?)result["reason"]}",
                ExitCodes.Tampered, "History sealed by this checkpoint was deleted or rewritten; restore from a backup and compare.");
        }
        return ExitCodes.Ok;
    }
}
