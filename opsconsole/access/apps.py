from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "opsconsole.access"
    label = "access"
    verbose_name = "Access control"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import pre_delete

        pre_delete.connect(_revoke_tokens_of, sender=settings.AUTH_USER_MODEL, dispatch_uid="access.revoke_tokens")


def _revoke_tokens_of(sender, instance, **kwargs) -> None:
    """A token acts for its owner: deleting the owner ends their tokens (they would otherwise
    outlive them as ownerless tokens with their scopes alone)."""
    from django.utils import timezone

    from opsconsole.access.models import ApiToken

    ApiToken.objects.active().filter(created_by=instance).update(revoked_at=timezone.now())
