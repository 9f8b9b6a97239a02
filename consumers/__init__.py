"""One thin adapter per stage: deliveries in -> models function -> outcomes out."""
