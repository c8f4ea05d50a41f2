from django.contrib.auth.models import User
from django.test import TestCase

from app.auth.credentials import check_credentials


class CredentialsTests(TestCase):
    def setUp(self):
        User.objects.create_user(username="alice", password="pass")

    def test_good_and_bad_password(self):
        self.assertIsNotNone(check_credentials("alice", "pass"))
        self.assertIsNone(check_credentials("alice", "wrong"))
