from django.db import migrations

import core.fields


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0003_indexer_first_block_and_safe_executed"),
    ]

    operations = [
        migrations.AddField(
            model_name="supplysnapshot",
            name="treasury_units",
            field=core.fields.TokenUnitsField(
                blank=True, null=True, verbose_name="treasury balances (base units)"
            ),
        ),
    ]
