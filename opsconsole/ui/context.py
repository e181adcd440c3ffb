"""Template context shared by every page: the navigation and the current section."""

from django.conf import settings

NAVIGATION = (
    ("environments", "Environments", "/environments/"),
    ("releases", "Releases", "/releases/"),
    ("delivery", "Delivery", "/delivery/"),
    ("runs", "Runs", "/runs/"),
    ("backups", "Backups", "/backups/"),
    ("dr", "DR", "/dr/"),
    ("infrastructure", "Infrastructure", "/infrastructure/"),
    ("audit", "Audit", "/audit/"),
)


def console(request):
    path = request.path
    current = next((key for key, _, url in NAVIGATION if path.startswith(url)), "")
    return {"navigation": NAVIGATION, "current_section": current, "sandbox": settings.SANDBOX}
