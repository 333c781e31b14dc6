"""The errors of the remote repository. None of them ever contains a credential."""

from ...errors import IntegrityError, InvalidOption, TvcatError
from ...i18n import N_


class RemoteCredentialsMissing(InvalidOption):
    template = N_(
        "no credentials for bucket {bucket} at {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "or backup_config.storage_backends.remote.access_key_id and secret_access_key"
    )


class RemoteUnavailable(TvcatError):
    """A failed request to the object storage. Replication retries a failed upload with backoff."""

    template = N_(
        "{operation} failed on bucket {bucket} at {endpoint}: {reason}; check "
        "backup_config.storage_backends.remote ({key}) and that the server is reachable"
    )


class RemoteLogDamaged(IntegrityError):
    template = N_("the event log on bucket {bucket} is damaged at event {seq}: {problem}")


class LeaseHeld(TvcatError):
    template = N_(
        "the remote repository on bucket {bucket} is being written by {holder} since {acquired_at}; "
        "its lease expires at {expires_at}: wait for that run to end, or for the lease to expire if it crashed"
    )


class ForeignRemoteLog(InvalidOption):
    template = N_(
        "bucket {bucket} under prefix {prefix!r} contains the event log of another repository: its event {seq} "
        "differs from this repository's; set backup_config.storage_backends.remote.prefix to a prefix of its own"
    )
