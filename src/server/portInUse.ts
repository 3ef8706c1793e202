/** The start-up message for a port someone else holds, shared by the gateway and the demo. */

/** The message for a port someone else holds: which one, what wanted it, and how to free it. */
export function portInUseMessage(port: number, role: string, override: string): string {
  return (
    `port ${port} (wanted by ${role}) is already in use. ` +
    `Stop the process listening there (find it with: lsof -nP -iTCP:${port} -sTCP:LISTEN), often an earlier npm start, ` +
    `or choose another port with ${override}.`
  );
}
