export function App() {
  return (
    <main>
      <h1>Credential gateway demo</h1>
      <p className="muted">One federated query, one token per subgraph.</p>
    </main>
  );
}
