namespace PgAgentOS.Bench;

/// <summary>Which driver runs the whole turns of figure 3.</summary>
internal static class TurnDrivers
{
    /// <summary>auto and runtime: the real runtime (PgAgentOS.Runtime's WorkerHost); sdk: the SDK loop that mirrors it.</summary>
    public static ITurnDriver Choose(string requested, List<string> notes) => requested switch
    {
        "sdk" => new SdkTurnDriver(),
        _ => new RuntimeTurnDriver(),
    };
}
