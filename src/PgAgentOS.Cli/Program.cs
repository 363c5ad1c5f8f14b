using PgAgentOS.Cli;

// The first Ctrl+C asks the running command to stop (a worker hands its turns back, tail and chat
// end cleanly); a second one ends the process at once.
using var interrupt = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    if (!interrupt.IsCancellationRequested)
    {
        e.Cancel = true;
        interrupt.Cancel();
    }
};
return await AosApp.RunAsync(args, CliContext.ForProcess(), interrupt.Token);
