"""The user model: email is the login; the fee account is the system user with id 0."""

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models

FEE_ACCOUNT_ID = 0


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    username = None
    email = models.EmailField("email address", unique=True)
    # Fernet-encrypted (accounts.crypto): verifying a code needs the secret, so it is
    # stored recoverable but never in plain text.
    totp_secret = models.CharField(max_length=255, blank=True, default="")
    totp_enabled = models.BooleanField(default=False)
    # The last accepted TOTP time step: a code is accepted once, never replayed.
    totp_last_step = models.BigIntegerField(default=0)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.email


class ApiKey(models.Model):
    """A bot's credential: a public ``key`` sent with each request and a secret that signs it.

    HMAC verification needs the secret on the server, so it is kept encrypted
    with Fernet under ``API_SECRET_KEYS`` (docs/adr/0003) and shown to the user
    only once, at creation.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    label = models.CharField(max_length=64)
    key = models.CharField(max_length=64, unique=True)
    secret_encrypted = models.TextField()
    can_read = models.BooleanField(default=True)
    can_trade = models.BooleanField(default=False)
    can_withdraw = models.BooleanField(default=False)
    ip_allowlist = models.JSONField(default=list, blank=True,
                                    help_text="IP addresses or CIDR networks; empty allows any address.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["user", "-id"], name="apikey_user_id")]

    def __str__(self) -> str:
        return f"{self.label} ({self.key[:8]}…)"

    @property
    def permissions(self) -> list[str]:
        return [name for name, on in (("read", self.can_read), ("trade", self.can_trade),
                                      ("withdraw", self.can_withdraw)) if on]
