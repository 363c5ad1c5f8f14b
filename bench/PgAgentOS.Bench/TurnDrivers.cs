namespace PgAgentOS.Bench;

/// <summary>Which driver runs the whole turns of figure 3.</summary>
internal static class TurnDrivers
{
    public static ITurnDriver Choose(string requested, List<string> notes)
    {
        switch (requested)
        {
            case "sdk":
                return new SdkTurnDriver();
            case "runtime":
                throw new ArgumentException("this build has no runtime (PgAgentOS.Runtime): use --driver sdk");
            default:
                notes.Add("Figure 3 is driven through the SDK the way the runtime's worker loop does it (claim, record_response, "
                          + "record_tool_result, record_response); the runtime itself (PgAgentOS.Runtime) is not part of this build.");
                return new SdkTurnDriver();
        }
    }
}
