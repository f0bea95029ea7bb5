"""The fee account: the engine credits every fee to user 0, so that user must exist."""

from django.db import migrations

FEE_ACCOUNT_ID = 0


def create_fee_account(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.get_or_create(
        id=FEE_ACCOUNT_ID,
        defaults={"email": "fee-account@cryptgo.invalid", "is_active": False, "password": "!"},
    )


def remove_fee_account(apps, schema_editor):
    apps.get_model("accounts", "User").objects.filter(id=FEE_ACCOUNT_ID).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_fee_account, remove_fee_account)]
