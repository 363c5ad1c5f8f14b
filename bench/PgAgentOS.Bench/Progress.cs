using System.Diagnostics;
using System.Globalization;

namespace PgAgentOS.Bench;

/// <summary>Progress on the terminal (standard error) while the bench runs.</summary>
public class BenchProgress
{
    private readonly TextWriter? _out;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly bool _live;
    private readonly Lock _gate = new();
    private int _tickWidth;

    /// <summary>Progress to a writer (null: silent).</summary>
    public BenchProgress(TextWriter? output, bool live)
    {
        _out = output;
        _live = live && output is not null;
    }

    /// <summary>No output.</summary>
    public static BenchProgress Silent { get; } = new(null, false);

    /// <summary>Progress on standard error, with a live line when it is a terminal.</summary>
    public static BenchProgress Console() => new(System.Console.Error, !System.Console.IsErrorRedirected);

    /// <summary>A new phase (heading line).</summary>
    public void Phase(string text) => Line($"== {text}");

    /// <summary>A finished result or an event (kept on screen).</summary>
    public void Info(string text) => Line($"   {text}");

    /// <summary>A transient status line (overwritten; shown only on a terminal).</summary>
    public void Tick(string text)
    {
        if (!_live)
        {
            return;
        }
        lock (_gate)
        {
            var s = $"{Stamp()}    {text}";
            _out!.Write("\r" + s.PadRight(_tickWidth));
            _tickWidth = s.Length;
            _out.Flush();
        }
    }

    private void Line(string text)
    {
        if (_out is null)
        {
            return;
        }
        lock (_gate)
        {
            if (_tickWidth > 0)
            {
                _out.Write("\r" + new string(' ', _tickWidth) + "\r");
                _tickWidth = 0;
            }
            _out.WriteLine($"{Stamp()} {text}");
            _out.Flush();
        }
    }

    private string Stamp()
    {
        var t = _clock.Elapsed;
        return string.Create(CultureInfo.InvariantCulture, $"[{(int)t.TotalMinutes:00}:{t.Seconds:00}]");
    }
}
