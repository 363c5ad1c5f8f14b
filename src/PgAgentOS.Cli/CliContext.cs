using Spectre.Console;

namespace PgAgentOS.Cli;

/// <summary>
/// Where a command writes and what environment it reads. One per invocation, so that commands can
/// run in-process in tests with captured output.
/// </summary>
public sealed class CliContext
{
    private static readonly AsyncLocal<CliContext?> CurrentContext = new();

    /// <summary>A context.</summary>
    public CliContext(TextWriter output, TextWriter error, bool isTerminal, Func<string, string?> environment, TextReader? input = null)
    {
        Out = output;
        Err = error;
        IsTerminal = isTerminal;
        Env = environment;
        In = input ?? TextReader.Null;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = isTerminal && environment("NO_COLOR") is null ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = isTerminal && environment("NO_COLOR") is null ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = isTerminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!isTerminal)
        {
            Console.Profile.Width = 160;
        }
    }

    /// <summary>Plain standard output (JSON, lines scripts read).</summary>
    public TextWriter Out { get; }

    /// <summary>Standard error (errors, progress).</summary>
    public TextWriter Err { get; }

    /// <summary>Standard input.</summary>
    public TextReader In { get; }

    /// <summary>Tables, colours and live displays; plain text when not on a terminal.</summary>
    public IAnsiConsole Console { get; }

    /// <summary>True when standard output is a terminal: colours and live displays are on.</summary>
    public bool IsTerminal { get; }

    /// <summary>Check that every command's examples parse (tests turn this on).</summary>
    public bool ValidateExamples { get; init; }

    /// <summary>Reads an environment variable.</summary>
    public Func<string, string?> Env { get; }

    /// <summary>
    /// Reads a line of standard input; Ctrl+C (<paramref name="ct"/>) stops the wait even though a
    /// console read itself cannot be cancelled.
    /// </summary>
    public async Task<string?> ReadLineAsync(CancellationToken ct) =>
        await Task.Run(In.ReadLine, CancellationToken.None).WaitAsync(ct); // Console.In reads synchronously, even through ReadLineAsync

    /// <summary>The context of the running invocation.</summary>
    public static CliContext Current
    {
        get => CurrentContext.Value ?? throw new InvalidOperationException("no CLI context");
        set => CurrentContext.Value = value;
    }

    /// <summary>The real process: its standard streams and environment.</summary>
    public static CliContext ForProcess() =>
        new(System.Console.Out, System.Console.Error, !System.Console.IsOutputRedirected,
            Environment.GetEnvironmentVariable, System.Console.In);
}
