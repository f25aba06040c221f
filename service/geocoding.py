"""Turning an address into coordinates, through geopy when a geocoder is configured."""

from __future__ import annotations

from typing import Protocol

from service.config import SettingError
from service.exceptions import GeocodingUnavailable, InvalidInput, ServiceUnavailable
from service.models import Location


class Geocoder(Protocol):
    def locate(self, address: str) -> Location: ...


class NoGeocoder:
    """Used when no geocoder is configured: callers must send coordinates."""

    def locate(self, address: str) -> Location:
        raise GeocodingUnavailable(
            "no geocoder is configured: send location as {'lat': ..., 'lon': ...} with the address",
            errors={"json": {"location": ["Missing data for required field (no geocoder is configured)."]}},
        )


class GeopyGeocoder:
    """Any geopy geocoder by name (e.g. 'nominatim'), optionally on a private domain."""

    def __init__(self, name: str, *, user_agent: str, domain: str = "", scheme: str = "https", timeout: float = 5):
        from geopy.exc import GeopyError
        from geopy.geocoders import get_geocoder_for_service

        kwargs: dict[str, object] = {"user_agent": user_agent, "timeout": timeout, "scheme": scheme}
        if domain:
            kwargs["domain"] = domain
        try:
            self._geocoder = get_geocoder_for_service(name)(**kwargs)
        except (GeopyError, TypeError, ValueError) as wrong:  # e.g. one that needs an API key Aidline cannot give
            raise SettingError(f"AIDLINE_GEOCODER: {name!r} cannot be used: {wrong}") from None

    def locate(self, address: str) -> Location:
        from geopy.exc import GeopyError

        try:
            found = self._geocoder.geocode(address)
        except GeopyError as exc:
            raise ServiceUnavailable(
                f"the geocoder could not be reached ({type(exc).__name__}); send coordinates"
            ) from exc
        if found is None:
            raise InvalidInput(
                "the address could not be found; send location as {'lat': ..., 'lon': ...}",
                errors={"json": {"address": ["Address not found by the geocoder."]}},
            )
        return Location(lat=float(found.latitude), lon=float(found.longitude))
