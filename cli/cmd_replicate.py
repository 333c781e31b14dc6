"""`tvcat replicate` and `tvcat catalog recover --from remote`: the repository on S3-compatible storage."""

import click

from ..engine.remote.recover import recover_catalog
from ..engine.remote.replicate import DEFAULT_PARALLEL, replicate_repository
from ..engine.remote.store import S3ObjectStore
from ..i18n import _
from .cmd_catalog import catalog_group
from .output import print_json


@click.command("replicate", help=_(
    "Copy the repository to the remote S3 bucket.\n\n"
    "Uploads the objects the bucket lacks, in parallel and with retries, then the "
    "events that are not on the remote yet, as a new log segment. An interrupted "
    "run is resumed by running it again: objects that arrived whole are not "
    "uploaded again. The bucket is backup_config.storage_backends.remote; the keys "
    "come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or from that section."
))
@click.option("--parallel", type=click.IntRange(1, 256), default=DEFAULT_PARALLEL, show_default=True,
              help=_("Maximum number of uploads at once."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def replicate_command(app, parallel, as_json):
    app.reject_dry_run("tvcat replicate")
    remote = S3ObjectStore(app.config.backup_config.storage_backends.remote, max_connections=parallel)
    repository = app.repository(create=False)
    report = None if as_json else (lambda message: click.echo(message, err=True))
    result = replicate_repository(repository, remote, parallel=parallel, report=report)
    if as_json:
        print_json(result.__dict__)
        return
    click.echo(_("uploaded {objects} objects ({bytes} bytes) and {events} events to bucket {bucket}; "
                 "{present} objects were there already").format(
        objects=result.objects_uploaded, bytes=result.bytes_uploaded, events=result.events_uploaded,
        bucket=remote.bucket, present=result.objects_remote))


@catalog_group.command("recover", help=_(
    "Rebuild the catalog from the event log replicated to the remote.\n\n"
    "For a machine that lost its repository: downloads the log segments, checks "
    "the hash chain and writes a new catalog.db in the repository directory, which "
    "must have no catalog yet. The objects stay on the remote."
))
@click.option("--from", "source", type=click.Choice(["remote"]), required=True,
              help=_("Where the log is read from."))
@click.option("--json", "as_json", is_flag=True, help=_("Print the result as JSON."))
@click.pass_obj
def recover_command(app, source, as_json):
    remote = S3ObjectStore(app.config.backup_config.storage_backends.remote)
    events, missing = recover_catalog(remote, app.repo)
    if as_json:
        print_json({"events_recovered": events, "manifests_missing": missing, "repository": str(app.repo)})
        return
    click.echo(_("recovered {count} events from bucket {bucket} into {path}").format(
        count=events, bucket=remote.bucket, path=app.repo))
    if missing:
        click.echo(_("warning: {count} manifests could not be read from the remote").format(count=missing), err=True)


COMMANDS = [replicate_command]
