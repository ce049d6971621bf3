from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backstage.demo import demo_users_ensure


class Command(BaseCommand):
    help = "Create the local stack's demo users (local profile only); safe to run again."

    def handle(self, *args, **options):
        if settings.PROFILE != "local":
            raise CommandError("Demo users exist only in the local profile; this is "
                               f"{settings.PROFILE}.")
        self.stdout.write("  Demo logins:\n")
        for demo in demo_users_ensure():
            self.stdout.write(f"    {demo.email:<24} {demo.password:<18} {demo.label}\n")
