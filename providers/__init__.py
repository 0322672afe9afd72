"""Concrete providers behind `domain.sending.Provider`."""

from providers.whatsapp import WhatsAppProvider

__all__ = ["WhatsAppProvider"]
