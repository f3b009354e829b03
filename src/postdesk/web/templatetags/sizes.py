"""{% load sizes %} ... {{ n|size }}: postdesk.sizes.describe_size in templates (Django's
filesizeformat says "KB" for kibibytes with its own rounding; one formatter everywhere)."""

from django import template

from postdesk.sizes import describe_size

register = template.Library()


@register.filter
def size(value) -> str:
    try:
        return describe_size(int(value))
    except (TypeError, ValueError):
        return ""
