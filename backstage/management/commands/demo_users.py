from django.core.management.base import BaseCommand, CommandError

from backstage.demo import demo_refusal, demo_users_ensure


class Command(BaseCommand):
    help = (
        "Create the local stack's demo users (local or test profile on the local chain "
        "only); safe to run again."
    )

    def handle(self, *args, **options):
        if refusal := demo_refusal("demo_users"):
            raise CommandError(refusal)
        self.stdout.write("  Demo logins:\n")
        for demo in demo_users_ensure():
            self.stdout.write(f"    {demo.email:<24} {demo.password:<18} {demo.label}\n")
