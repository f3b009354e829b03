from django.apps import AppConfig


class PostdeskConfig(AppConfig):
    name = "postdesk"
    verbose_name = "Postdesk"
