"""The profile form and its rules."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Collection
from urllib.parse import urlsplit

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # WTForms 3.3; types-WTForms is 3.2
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from users.choices import LOCALE_CODES, LOCALES, timezone_codes, timezone_names
from users.schema import BIO_MAX, DISPLAY_NAME_MAX, PROFILE_FIELDS, WEBSITE_MAX


def strip(value: str | None) -> str | None:
    """Trim surrounding white space from text input."""
    return value.strip() if isinstance(value, str) else value


def unix_newlines(value: str | None) -> str | None:
    """Browsers submit textarea line breaks as CRLF; keep plain newlines (and count them as one character)."""
    return value.replace("\r\n", "\n").replace("\r", "\n") if isinstance(value, str) else value


def no_control_characters(*, allow_newlines: bool = False) -> Callable[[FlaskForm, StringField], None]:
    """Refuse control and invisible format characters (newlines only where allowed)."""
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()

    def check(form: FlaskForm, field: StringField) -> None:
        for char in field.data or "":
            if char not in allowed and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
                raise ValidationError("Remove control or invisible characters.")

    return check


def one_of(allowed: Callable[[], Collection[str]], message: str) -> Callable[[FlaskForm, SelectField], None]:
    """Refuse any value outside `allowed()` with a message that says what to pick."""

    def check(form: FlaskForm, field: SelectField) -> None:
        if field.data not in allowed():
            raise ValidationError(message)

    return check


def web_address(form: FlaskForm, field: StringField) -> None:
    """Accept only http(s) addresses with a host name."""
    if not field.data:
        return
    message = "Enter a web address starting with http:// or https://."
    try:
        parts = urlsplit(field.data)
        hostname = parts.hostname
    except ValueError as error:
        # urlsplit refuses some malformed addresses ("http://[::1"); WTForms only
        # turns ValidationError into a message, so a bare ValueError would be a 500.
        raise ValidationError(message) from error
    if parts.scheme not in ("http", "https") or not hostname or " " in field.data:
        raise ValidationError(message)


# The longest version we ever render: Redis's clock in milliseconds has 13 digits; 19 is a 64-bit integer.
VERSION_DIGITS_MAX = 19


def whole_number(form: FlaskForm, field: HiddenField) -> None:
    """The hidden version must be what we rendered: ASCII digits only, and not more of them than a version has.

    `str.isdigit` also accepts "²" and other Unicode digits that `int()` refuses, and `int()` refuses
    more than 4,300 digits: either would be a 500 instead of this message.
    """
    data = field.data
    if data in (None, ""):
        return
    text = str(data)
    if not (text.isascii() and text.isdigit() and len(text) <= VERSION_DIGITS_MAX):
        raise ValidationError("This form is out of date. Please reload the page.")


class ProfileForm(FlaskForm):
    """Display name, locale, time zone, website and bio."""

    display_name = StringField(
        "Display name",
        filters=[strip],
        validators=[
            DataRequired("Enter a display name."),
            Length(max=DISPLAY_NAME_MAX, message=f"Use at most {DISPLAY_NAME_MAX} characters."),
            no_control_characters(),
        ],
    )
    # validate_choice=False: one_of() below says what to do instead of "Not a valid choice".
    locale = SelectField(
        "Language",
        choices=[SelectChoice(code, label) for code, label in LOCALES],
        validate_choice=False,
        validators=[one_of(lambda: LOCALE_CODES, "Choose a language from the list.")],
    )
    timezone = SelectField(
        "Time zone",
        validate_choice=False,
        validators=[one_of(timezone_codes, "Choose a time zone from the list, such as Europe/Paris.")],
    )
    website = StringField(
        "Website",
        filters=[strip, lambda value: value or None],
        validators=[
            Optional(),
            Length(max=WEBSITE_MAX, message=f"Use at most {WEBSITE_MAX} characters."),
            no_control_characters(),
            web_address,
        ],
    )
    bio = TextAreaField(
        "Bio",
        filters=[strip, unix_newlines, lambda value: value or None],
        validators=[
            Optional(),
            Length(max=BIO_MAX, message=f"Use at most {BIO_MAX} characters."),
            no_control_characters(allow_newlines=True),
        ],
    )

    # The profile version the form was rendered from (empty from clients that do not send it).
    version = HiddenField(validators=[Optional(), whole_number])

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)
        self.timezone.choices = [SelectChoice(name) for name in timezone_names()]

    def shown_version(self) -> int | None:
        """The version of the profile the user saw, or None when the client did not say."""
        data = self.version.data
        return None if data is None or data == "" else int(data)

    def profile_fields(self) -> dict[str, str | None]:
        """The validated values, as stored in the session."""
        return {field: getattr(self, field).data for field in PROFILE_FIELDS}
