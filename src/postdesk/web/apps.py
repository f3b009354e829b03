from django.apps import AppConfig


class WebConfig(AppConfig):
    """Registered so Django finds the templates under web/templates/."""

    name = "postdesk.web"
    label = "postdesk_web"
    verbose_name = "Postdesk web UI"
