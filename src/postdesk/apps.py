from django.apps import AppConfig


class PostdeskConfig(AppConfig):
    name = "postdesk"
    verbose_name = "Postdesk"

    def ready(self) -> None:
        from postdesk import signin  # noqa: F401  (connects the sign-in signals: postdesk.signin.connect)

        signin.connect()
