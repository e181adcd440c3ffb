"""Registering releases from ECR on demand: every tagged image of the configured repositories."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from deployments.models import Release
from deployments.services import register_release
from opsconsole import aws


class SyncFailed(Exception):
    pass


def configured() -> list[tuple[str, str]]:
    """(region, repository name) pairs from OPSCONSOLE_ECR_REPOSITORIES ("us-east-1/api,...")."""
    pairs = []
    for item in settings.OPSCONSOLE_ECR_REPOSITORIES:
        region, _, name = item.partition("/")
        pairs.append((region, name))
    return pairs


def sync(principal, repositories: list[tuple[str, str]] | None = None) -> list[Release]:
    repositories = repositories if repositories is not None else configured()
    if not repositories:
        raise SyncFailed("No ECR repositories are configured (OPSCONSOLE_ECR_REPOSITORIES).")
    created = []
    for region, name in repositories:
        ecr = aws.client("ecr", region)
        try:
            uri = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"]
            paginator = ecr.get_paginator("describe_images")
            for page in paginator.paginate(repositoryName=name, filter={"tagStatus": "TAGGED"}):
                for image in page["imageDetails"]:
                    for tag in image.get("imageTags", []):
                        release, new = register_release(principal, repository=uri, tag=tag, digest=image["imageDigest"])
                        if new:
                            created.append(release)
                        break  # one release per digest; its first tag names it
        except (ClientError, BotoCoreError) as exc:
            raise SyncFailed(f"Could not read ECR repository {name} in {region}: {exc}") from None
    return created
