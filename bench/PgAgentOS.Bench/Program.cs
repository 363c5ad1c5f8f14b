using System.Globalization;
using PgAgentOS.Bench;

// aos bench: see BenchOptions.Help. Exit codes: 0 done, 1 failed, 2 bad arguments, 130 interrupted.
if (args.Any(a => a is "-h" or "--help"))
{
    Console.WriteLine(BenchOptions.Help);
    return 0;
}

// --render REPORT.json [--docs PATH]: the table and the docs again from a JSON report, without measuring.
// (anywhere among the arguments: scripts/bench.sh, behind `aos bench`, puts its own first)
var renderIndex = Array.IndexOf(args, "--render");
if (renderIndex >= 0 && renderIndex + 1 < args.Length)
{
    var reportPath = args[renderIndex + 1];
    var saved = System.Text.Json.JsonSerializer.Deserialize<BenchReport>(await File.ReadAllTextAsync(reportPath), BenchReport.Json)
                ?? throw new InvalidOperationException($"{reportPath} is not a bench report");
    saved.Targets = Targets.Check(saved);
    Console.WriteLine(Render.Table(saved));
    Console.WriteLine(Render.TargetTable(saved));
    var docIndex = Array.IndexOf(args, "--docs");
    if (docIndex > 0 && docIndex + 1 < args.Length)
    {
        var path = args[docIndex + 1];
        await File.WriteAllTextAsync(path, Render.Docs(saved, File.Exists(path) ? await File.ReadAllTextAsync(path) : null));
        Console.WriteLine($"regenerated {path}");
    }
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"aos bench: {e.Message}");
    return 2;
}

using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    Console.Error.WriteLine("aos bench: interrupted, stopping the cluster...");
    cts.Cancel();
};

var progress = BenchProgress.Console();
BenchReport report;
try
{
    report = await BenchRunner.RunAsync(options, progress, cts.Token);
}
catch (OperationCanceledException) when (cts.IsCancellationRequested)
{
    return 130;
}
catch (Exception e) when (e is not OutOfMemoryException)
{
    Console.Error.WriteLine($"aos bench: failed: {e.Message}");
    Console.Error.WriteLine(e);
    return 1;
}
report.Commit = options.Commit;

var json = options.JsonPath ?? Path.Combine("artifacts", "bench",
    "bench-" + report.StartedAt.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + ".json");
Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(json))!);
await File.WriteAllTextAsync(json, report.ToJson());
File.Copy(json, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(json))!, "latest.json"), overwrite: true);

Console.WriteLine();
Console.WriteLine(Render.Table(report));
Console.WriteLine(Render.TargetTable(report));
foreach (var n in report.Notes)
{
    Console.WriteLine("note: " + n);
}
Console.WriteLine($"JSON report: {json}");
if (options.DocsPath is { } docs)
{
    var previous = File.Exists(docs) ? await File.ReadAllTextAsync(docs) : null;
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(docs))!);
    await File.WriteAllTextAsync(docs, Render.Docs(report, previous));
    Console.WriteLine($"regenerated {docs}");
}
return 0;
