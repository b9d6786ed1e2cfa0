"""The set of services one running Mailwire offers, built once by the runtime."""

from __future__ import annotations

from dataclasses import dataclass

from mailwire.backends.smtp.delivery import SmtpPool
from mailwire.services.accounts import AccountService
from mailwire.services.changes import ChangeService
from mailwire.services.compose import MessageComposer
from mailwire.services.connections import LocalConnections
from mailwire.services.folders import FolderService
from mailwire.services.gateways import GatewayService
from mailwire.services.health import HealthService
from mailwire.services.keys import KeyService
from mailwire.services.message_changes import MessageChangeService
from mailwire.services.message_content import MessageContentService
from mailwire.services.messages import MessageService
from mailwire.services.search import SearchService
from mailwire.services.sending import SendingService, StoreGateways, UploadSentCopier
from mailwire.services.settings import SettingsService
from mailwire.services.submit import SubmitService
from mailwire.services.templates import TemplateService
from mailwire.services.tokens import TokenService
from mailwire.services.uploads import UploadService
from mailwire.services.verify import VerifyService
from mailwire.services.webhook_queue import QueueService
from mailwire.services.webhook_routes import WebhookRouteService
from mailwire.store.store import Store
from mailwire.types import Clock, now_ms


@dataclass(frozen=True, slots=True)
class Services:
    tokens: TokenService
    health: HealthService
    keys: KeyService
    accounts: AccountService
    verify: VerifyService
    changes: ChangeService
    messages: MessageService
    #: This process's workers' command connections (attached by the runtime).
    connections: LocalConnections
    content: MessageContentService
    search: SearchService
    message_changes: MessageChangeService
    folders: FolderService
    uploads: UploadService
    #: Queue controls, dead letters and `/v1/stats`.
    queues: QueueService
    settings: SettingsService
    webhook_routes: WebhookRouteService
    gateways: GatewayService
    #: Message templates and their rendering for sending.
    templates: TemplateService
    #: `POST /submit`: build and queue outgoing messages.
    submit: SubmitService
    #: The `submit` queue's handler: deliver queued messages.
    sending: SendingService

    @classmethod
    def build(cls, store: Store, *, clock: Clock = now_ms) -> Services:
        messages = MessageService(store)
        connections = LocalConnections()
        content = MessageContentService(store, connections)
        uploads = UploadService(store, connections, content)
        message_changes = MessageChangeService(store, messages, connections)
        gateways = StoreGateways(store)
        templates = TemplateService(store)
        return cls(
            tokens=TokenService(store, clock=clock),
            health=HealthService(store),
            keys=KeyService(store),
            accounts=AccountService(store, clock=clock),
            verify=VerifyService(),
            changes=ChangeService(store),
            messages=messages,
            connections=connections,
            content=content,
            search=SearchService(store, messages, connections),
            message_changes=message_changes,
            folders=FolderService(store, connections),
            uploads=uploads,
            queues=QueueService(store),
            webhook_routes=WebhookRouteService(store),
            settings=SettingsService(store),
            gateways=GatewayService(store),
            templates=templates,
            submit=SubmitService(
                store,
                MessageComposer(store, content),
                gateways=gateways,
                templates=templates,
                clock=clock,
            ),
            sending=SendingService(
                store,
                gateways=gateways,
                sent_copies=UploadSentCopier(uploads),
                flagger=message_changes,
                pool=SmtpPool(),
                clock=clock,
            ),
        )
