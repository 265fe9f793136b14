"""`imagefix webhook serve`: the admission webhook (kata_imagefix/webhook) on HTTPS."""

from __future__ import annotations

from typing import Any

import click

from .app import main
from .options import budget_model, budget_options


@main.group()
def webhook() -> None:
    """Kubernetes admission webhook: fix Kata pods as `k8s fix` does (/mutate), or judge them (/validate).

    \b
    Example:
      imagefix webhook serve --tls-cert-file /tls/tls.crt --tls-private-key-file /tls/tls.key
    """


@webhook.command("serve")
@click.option("--tls-cert-file", required=True, type=click.Path(dir_okay=False),
              help="PEM certificate (chain); re-read when it changes.")
@click.option("--tls-private-key-file", required=True, type=click.Path(dir_okay=False),
              help="PEM private key of the certificate; re-read when it changes.")
@click.option("--listen", default="0.0.0.0:8443", show_default=True, metavar="HOST:PORT",
              help="Where to listen for HTTPS (port 0: any free port, printed at start).")
@click.option("--insecure-port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Also listen for plain HTTP on 127.0.0.1:PORT - for tests only, never in a cluster.")
@click.option("--deadline-seconds", type=click.FloatRange(0.5, 29), default=8.0, show_default=True,
              help="Answer every request within this (keep it below the webhook's timeoutSeconds).")
@click.option("--also-templates", is_flag=True,
              help="Also fix the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, "
                   "CronJobs (CREATE and UPDATE; add their resources to the webhook's rules).")
@click.option("--warn-only", is_flag=True, help="/validate warns instead of denying.")
@click.option("--deny-on-error", is_flag=True,
              help="A review that cannot be judged is denied (default: allowed, as failurePolicy Ignore).")
@click.option("--runtime-class", "runtime_classes", multiple=True, metavar="NAME",
              help="Pods of this runtime class (repeatable) [default: any name starting with kata].")
@click.option("--kata-config", "kata_configs", multiple=True, metavar="[CLASS=]FILE",
              help="A runtime class's Kata config on the nodes (drop-ins included): its values in force.")
@click.option("--tag-ttl-seconds", type=click.FloatRange(0), default=300.0, show_default=True,
              help="Re-resolve a tag after this long (digests are kept while the cache has room).")
@click.option("--cache-images", type=click.IntRange(1, 100000), default=256, show_default=True,
              help="Image facts kept in memory.")
@click.option("--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Images read at once.")
@click.option("--insecure-registry", "insecure", multiple=True, metavar="HOST[:PORT]",
              help="Allow plain HTTP / no TLS check for this registry (loopback always may).")
@click.option("--registry-timeout", type=click.FloatRange(0.1, 3600), default=5.0, show_default=True,
              metavar="S", help="Give up on a silent registry after S seconds.")
@click.option("--platform", metavar="OS/ARCH", help="The nodes' platform [default: this machine's].")
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
@budget_options
@click.pass_context
def webhook_serve(ctx: click.Context, tls_cert_file: str, tls_private_key_file: str, listen: str,
                  insecure_port: int | None, deadline_seconds: float, also_templates: bool, warn_only: bool,
                  deny_on_error: bool,
                  runtime_classes: tuple[str, ...], kata_configs: tuple[str, ...], tag_ttl_seconds: float,
                  cache_images: int, jobs: int, insecure: tuple[str, ...], registry_timeout: float,
                  platform: str | None, verbose: bool, **kw: Any) -> None:
    """Serve /mutate, /validate, /healthz, /readyz and /metrics until stopped (SIGTERM or Ctrl-C).

    Registry credentials come from the Docker config file ($DOCKER_CONFIG/config.json, e.g. a mounted
    kubernetes.io/dockerconfigjson Secret); see docs/webhook.md.
    """
    import logging
    import signal
    import threading

    from ..image.sources import open_image
    from ..k8s.audit import AuditOptions
    from ..registry.options import RegistryOptions
    from ..webhook.admission import WebhookOptions
    from ..webhook.facts import ImageFacts
    from ..webhook.server import App, TlsFiles, make_server, parse_listen
    from .k8s_cmds import _kata_configs

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    address = parse_listen(listen)
    tls = TlsFiles(tls_cert_file, tls_private_key_file)
    model = budget_model(ctx, kw)
    registry = RegistryOptions(insecure=insecure, timeout=registry_timeout, platform=platform,
                               stall_seconds=registry_timeout, deadline_seconds=max(deadline_seconds, 1.0))
    audit_options = AuditOptions(runtime_classes, jobs=jobs, kata_configs=_kata_configs(kata_configs))
    options = WebhookOptions(audit_options, model, warn_only=warn_only, deadline_s=deadline_seconds,
                             allow_on_error=not deny_on_error, also_templates=also_templates)
    facts = ImageFacts(lambda ref: open_image(ref, platform=platform, registry=registry),
                       tag_ttl_s=tag_ttl_seconds, max_images=cache_images, workers=jobs)
    app = App(options, facts)
    servers = [make_server(address, app, tls)]
    if insecure_port is not None:
        servers.append(make_server(("127.0.0.1", insecure_port), app, None))
    for server in servers:
        click.echo(f"imagefix webhook: listening on {server.url}", err=True)

    def stop(_signum: int, _frame: Any) -> None:
        def shut_all() -> None:
            for server in servers:
                server.shutdown()

        threading.Thread(target=shut_all, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.server_close()
        facts.close()
