"""service/privacy.py: what a channel URL shows."""

from __future__ import annotations

from service.privacy import channel_as_seen, mask_channel


def test_a_masked_channel_hides_the_whole_user_and_password_part() -> None:
    masked = mask_channel("twilio://AC0123456789abcdef:tok3nsecret@+15550001111/+8613800009901")

    assert masked.startswith("twilio://****@")
    assert "tok3nsecret" not in masked and "AC0123456789" not in masked and "6789" not in masked.split("@")[0]
    assert "+8613800009901" in masked or "%2B8613800009901" in masked, "still recognisable to a dispatcher"


def test_a_channel_without_credentials_keeps_its_address() -> None:
    assert mask_channel("json://127.0.0.1:9000/hook").startswith("json://127.0.0.1:9000/hook")


def test_those_who_may_not_see_contacts_see_only_the_kind_of_channel() -> None:
    masked = mask_channel("mailtos://alice:pw@example.com?to=zhang@example.com")

    assert channel_as_seen(masked, sees_contacts=False) == "mailtos://…"
    assert channel_as_seen(masked, sees_contacts=True) == masked
