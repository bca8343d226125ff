"""``wanying cache …``: run a hospital cache node, prefetch studies into it, show its state."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Hospital cache node: the centre's DICOMweb API near the doctors", no_args_is_help=True)


@app.command()
def serve(
    centre: str = typer.Option(..., help="the centre's API base URL, e.g. http://10.0.0.5:8420"),
    token_env: str = typer.Option("WANYING_CACHE_CENTRE_TOKEN", help="environment variable holding this "
                                  "hospital's system token at the centre"),
    tokens_file: Path = typer.Option(..., help="the hospital's API tokens (api-tokens.json format)"),
    cache_dir: Path = typer.Option(Path("var/cache-node"), help="where cached responses and the index live"),
    max_gb: float = typer.Option(50.0, help="byte budget; least recently used entries are evicted beyond it"),
    fresh_seconds: float = typer.Option(300.0, help="serve without asking the centre for this long"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8430),
) -> None:
    """Serve /dicomweb from the cache until Ctrl-C."""
    import os

    import uvicorn

    from api.auth import TokenStore
    from pipelines.cache_node.node import CacheNode, NodeConfig, create_cache_app

    token = os.environ.get(token_env)
    if not token:
        raise typer.BadParameter(f"set {token_env} to this hospital's system token at the centre")
    node = CacheNode(NodeConfig(centre, token, cache_dir, int(max_gb * 1024**3), fresh_seconds))
    uvicorn.run(create_cache_app(node, TokenStore.load(tokens_file)), host=host, port=port, log_level="info")


@app.command()
def prefetch(
    study_uids: list[str] = typer.Argument(..., help="studies to fetch now"),
    node_url: str = typer.Option("http://127.0.0.1:8430", help="the running cache node"),
    token_env: str = typer.Option("WANYING_CACHE_TOKEN", help="environment variable with an operator/system token"),
) -> None:
    """Ask a running cache node to fetch studies from the centre now."""
    import os

    import httpx

    resp = httpx.post(f"{node_url}/cache/prefetch", json={"study_uids": study_uids}, timeout=600,
                      headers={"Authorization": f"Bearer {os.environ.get(token_env, '')}"})
    typer.echo(resp.text)
    raise typer.Exit(0 if resp.status_code == 200 else 1)


@app.command()
def stats(
    node_url: str = typer.Option("http://127.0.0.1:8430"),
    token_env: str = typer.Option("WANYING_CACHE_TOKEN"),
) -> None:
    """Entries, bytes, hits/misses, evictions and unreported views of a running cache node."""
    import os

    import httpx

    resp = httpx.get(f"{node_url}/cache/stats", headers={"Authorization": f"Bearer {os.environ.get(token_env, '')}"})
    typer.echo(resp.text)
    raise typer.Exit(0 if resp.status_code == 200 else 1)
