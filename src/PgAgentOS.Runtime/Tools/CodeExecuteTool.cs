using System.Text;
using System.Text.Json.Nodes;
using Jint;
using Jint.Native;
using Jint.Runtime;

namespace PgAgentOS.Runtime.Tools;

/// <summary>Limits of code_execute.</summary>
public sealed record CodeLimits
{
    /// <summary>Wall-clock limit (the skill's timeout applies too; the smaller wins).</summary>
    public TimeSpan Time { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Memory the script may allocate.</summary>
    public long MemoryBytes { get; init; } = 32 * 1024 * 1024;
    /// <summary>Call depth.</summary>
    public int Recursion { get; init; } = 200;
    /// <summary>Statements executed.</summary>
    public int Statements { get; init; } = 5_000_000;
    /// <summary>Characters of console output and result kept.</summary>
    public int OutputChars { get; init; } = 16_000;
}

/// <summary>
/// code_execute: JavaScript in Jint, an interpreter with no access to files, network, processes or
/// .NET types (CLR interop stays off; the only host function is console.log). Time, memory,
/// recursion, statement and output limits apply; strict mode. Returns the value of the last
/// expression (as JSON) and the console output.
/// </summary>
public sealed class CodeExecuteTool(CodeLimits limits) : ITool
{
    /// <inheritdoc />
    public Task<ToolResult> RunAsync(ToolCall call, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(call);
        var code = call.Arguments["code"]?.GetValue<string>() ?? "";
        var time = TimeSpan.FromMilliseconds(Math.Min(limits.Time.TotalMilliseconds, call.Skill.TimeoutMs));
        return Task.Factory.StartNew(() => Run(code, time, ct), ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Runs a script under the limits (also used directly by tests).</summary>
    public ToolResult Run(string code, TimeSpan time, CancellationToken ct)
    {
        var output = new StringBuilder();
        var truncated = false;
        void Print(string line)
        {
            if (output.Length + line.Length + 1 > limits.OutputChars)
            {
                truncated = true;
                return;
            }
            output.Append(line).Append('\n');
        }

        using var engine = new Engine(o =>
        {
            o.Strict();
            o.TimeoutInterval(time);
            o.LimitMemory(limits.MemoryBytes);
            o.LimitRecursion(limits.Recursion);
            o.MaxStatements(limits.Statements);
            o.CancellationToken(ct);
        });
        engine.SetValue("__aos_print", new Action<string>(Print));
        engine.Execute("""
            (function (g) {
              const fmt = (a) => a.map(x => typeof x === 'string' ? x : (function () { try { return JSON.stringify(x); } catch (e) { return String(x); } })()).join(' ');
              const c = { log: (...a) => __aos_print(fmt(a)), info: (...a) => __aos_print(fmt(a)), warn: (...a) => __aos_print(fmt(a)), error: (...a) => __aos_print(fmt(a)) };
              Object.defineProperty(g, 'console', { value: Object.freeze(c), writable: false, configurable: false });
            })(globalThis);
            """);
        try
        {
            var value = engine.Evaluate(code);
            string? json = null;
            if (!value.IsUndefined())
            {
                var s = engine.Invoke(engine.Evaluate("JSON.stringify"), value);
                json = s.IsString() ? s.AsString() : null;
            }
            JsonNode? result = null;
            if (json is not null)
            {
                if (json.Length > limits.OutputChars)
                {
                    result = JsonValue.Create(json[..limits.OutputChars]);
                    truncated = true;
                }
                else
                {
                    result = JsonNode.Parse(json);
                }
            }
            return ToolResult.Ok(new JsonObject { ["result"] = result, ["console"] = output.ToString(), ["truncated"] = truncated });
        }
        catch (JavaScriptException e)
        {
            return ToolResult.Fail("the script threw: " + e.Message, Console(output));
        }
        catch (TimeoutException)
        {
            return ToolResult.Fail($"the script ran longer than {time.TotalSeconds:0.#} s", Console(output));
        }
        catch (MemoryLimitExceededException)
        {
            return ToolResult.Fail($"the script used more than {limits.MemoryBytes / (1024 * 1024)} MB", Console(output));
        }
        catch (RecursionDepthOverflowException)
        {
            return ToolResult.Fail($"the script recursed deeper than {limits.Recursion} calls", Console(output));
        }
        catch (StatementsCountOverflowException)
        {
            return ToolResult.Fail($"the script ran more than {limits.Statements} statements", Console(output));
        }
        catch (ExecutionCanceledException)
        {
            return ToolResult.Fail("the script was cancelled", Console(output));
        }
        catch (Acornima.ParseErrorException e)
        {
            return ToolResult.Fail("the script does not parse: " + e.Message);
        }
        catch (JintException e)
        {
            return ToolResult.Fail("the script failed: " + e.Message, Console(output));
        }
    }

    private static JsonObject Console(StringBuilder output) => new() { ["console"] = output.ToString() };
}
