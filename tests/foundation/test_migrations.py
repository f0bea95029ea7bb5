from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import FEE_ACCOUNT_ID, User


def test_every_migration_is_applied_from_zero(db):
    # pytest-django built this database by running every migration from an empty schema.
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []


def test_fee_account_exists_and_cannot_log_in(db):
    fee = User.objects.get(id=FEE_ACCOUNT_ID)
    assert fee.is_active is False
    assert fee.has_usable_password() is False


def test_database_is_postgresql(db):
    assert connection.vendor == "postgresql"
