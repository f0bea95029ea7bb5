"""Indexes and constraints of the matcher's tables cut to what queries use (ADR 0006, "Foreign keys and indexes").

Orders, deals and the ledger keep their foreign keys in Django but lose the database constraints (checked
at every COMMIT, one lookup per row and key) and the single-column indexes that a composite index already
covers or that no query uses. ``trading_balance`` is rewritten in place at every batch: a fill factor of 50
leaves room on each page for HOT updates (no index entry per update).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('markets', '0001_initial'),
        ('trading', '0002_remove_outbox'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='balance',
            name='asset',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='balances', to='markets.asset'),
        ),
        migrations.AlterField(
            model_name='balance',
            name='user',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='balances', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='balancehistory',
            name='asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ledger', to='markets.asset'),
        ),
        migrations.AlterField(
            model_name='balancehistory',
            name='user',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ledger', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='deal',
            name='maker_order',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='maker_deals', to='trading.order'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='maker_user',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='maker_deals', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='deal',
            name='market',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='deals', to='markets.market'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='taker_order',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='taker_deals', to='trading.order'),
        ),
        migrations.AlterField(
            model_name='deal',
            name='taker_user',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='taker_deals', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='order',
            name='fee_asset',
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='markets.asset'),
        ),
        migrations.AlterField(
            model_name='order',
            name='market',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='orders', to='markets.market'),
        ),
        migrations.AlterField(
            model_name='order',
            name='status',
            field=models.CharField(choices=[('open', 'Open'), ('partially_filled', 'Partially filled'), ('filled', 'Filled'), ('cancelled', 'Cancelled'), ('expired', 'Expired'), ('self_trade', 'Cancelled by self-trade prevention')], max_length=16),
        ),
        migrations.AlterField(
            model_name='order',
            name='user',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='orders', to=settings.AUTH_USER_MODEL),
        ),
        migrations.RunSQL("ALTER TABLE trading_balance SET (fillfactor = 50)",
                          "ALTER TABLE trading_balance RESET (fillfactor)"),
    ]
