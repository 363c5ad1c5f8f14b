using PgAgentOS.Cli;

return await AosApp.RunAsync(args, CliContext.ForProcess());
