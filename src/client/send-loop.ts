import type { SessionSnapshot } from '../shared/protocol.js'
import { utf8Length } from '../shared/rules.js'
import { FlushBarriers } from './barriers.js'
import { toPatchBody } from './changes.js'
import { SessionError } from './errors.js'
import { createSender, type Sender, type SenderOptions } from './sender.js'
import type { StatusStore } from './status.js'
import type { LayeredView, QueuedPatch } from './view.js'

/** Largest body sent with `keepalive` (browsers allow 64 KiB for all of a page's keepalive requests). */
const KEEPALIVE_MAX_BYTES = 60 * 1024

const byteLength = (body: unknown) => utf8Length(JSON.stringify(body))

export interface SendLoopOptions extends Pick<SenderOptions, 'post' | 'retry' | 'onAuthError'> {
  view: LayeredView
  status: StatusStore
  numbering: ReturnType<typeof createNumbering>
  clientId: string
  workflowId: string | undefined
  /** Writes the local copy now (before a request leaves, and as the page hides). */
  persist: () => Promise<void>
  /** Whether the client runs (not stopped). */
  isRunning: () => boolean
  /** Whether the local copy is read and closed pages' changes are taken over: sending may begin. */
  isReady: () => boolean
  /** The server confirmed a patch; `taken`: its snapshot became the base. */
  onConfirmed: (snapshot: SessionSnapshot, taken: boolean) => void
}

/** This page's numbering, made before the parts that read it: the seq of its next patch, and tickets (the local send order, which flush barriers count in). */
export function createNumbering() {
  let seq = 1
  let tickets = 0
  return {
    /** The seq the next patch of this page will carry. */
    nextSeq: () => seq,
    takeSeq: () => seq++,
    /** A number in the local send order (a new patch, or one taken over from a closed page). */
    nextTicket: () => ++tickets,
    lastTicket: () => tickets,
  }
}

export interface SendLoop {
  readonly sender: Sender
  /** Sends pending changes now, or as soon as the request in flight is answered. */
  sync(): void
  /** After `start()`: what is queued goes out, and what was pending follows without a debounce. */
  resume(): void
  /** Sends the next patch if nothing else is under way (back online, say). */
  send(): void
  /** As the page hides: everything unconfirmed in one patch, with `keepalive`. */
  sendOnHide(): void
  /** Resolves when every change made before the call is confirmed (see `SessionClient.flush`). */
  flush(timeoutMs: number, started: Promise<void>): Promise<void>
}

/**
 * The patch queue's send loop: seals pending changes into numbered patches, keeps one request in
 * flight (the sender owns the request, backoff and 401), and answers flush barriers as patches
 * are confirmed or refused.
 */
export function createSendLoop(options: SendLoopOptions): SendLoop {
  const { view, status, clientId, numbering } = options
  let syncRequested = false
  const barriers = new FlushBarriers()
  const sender = createSender({
    post: options.post,
    retry: options.retry,
    onAuthError: options.onAuthError,
    persist: options.persist,
    isQueued: (patch) => view.queue.includes(patch),
    onAck(patch, snapshot) {
      status.synced(true, { isSyncing: sender.isSending() })
      options.onConfirmed(snapshot, view.ack(patch, snapshot))
      barriers.confirm(patch.ticket)
      continueSending()
    },
    onRefuse(patch, failure) {
      view.refuse(patch)
      barriers.refuse(patch.ticket, failure)
      continueSending()
    },
    onStatus: (failure) =>
      failure ? void status.failed(failure, { isSyncing: sender.isSending() }) : status.set({ isSyncing: sender.isSending() }),
    send: () => send(),
  })

  /** Turns the pending changes (with every queued one, `carryQueue`) into a patch with the next seq. */
  function seal(carryQueue?: boolean): QueuedPatch {
    return view.seal(
      (changes) => ({
        clientId,
        seq: numbering.takeSeq(),
        ...toPatchBody(changes),
        ...(options.workflowId !== undefined && { workflowId: options.workflowId }),
      }),
      numbering.nextTicket(),
      carryQueue,
    )
  }

  function send(): void {
    if (!options.isRunning() || sender.isBusy() || !status.current.isOnline) return
    if (!options.isReady()) {
      // Sent once the client has started (resume()); starting it is the client's.
      syncRequested = true
      return
    }
    if (view.queue.length === 0) {
      if (view.pending.size === 0) return
      seal()
    }
    syncRequested = false
    sender.send(view.queue[0]!, false)
  }

  function continueSending(): void {
    if (view.queue.length > 0 || (view.pending.size > 0 && (syncRequested || barriers.size > 0))) send()
  }

  function sync(): void {
    syncRequested = true
    send()
  }

  return {
    sender,
    sync,
    send,
    resume() {
      if (view.queue.length === 0 && view.pending.size === 0 && !syncRequested) return
      send()
      // Left-over patches went first; what was pending follows without waiting for a debounce.
      if (view.pending.size > 0) syncRequested = true
    },
    sendOnHide() {
      void options.persist()
      if (!options.isReady() || !options.isRunning() || !status.current.isOnline || sender.isAuthorizing()) return
      let patch: QueuedPatch | undefined
      if (view.queue.every((queued) => queued.body.clientId === clientId) && (view.pending.size > 0 || view.queue.length > 1)) {
        // One patch with everything unconfirmed, under a new seq: whichever of it and a patch in
        // flight arrives last, the server ends with every change (an older seq is not applied).
        // Too large for keepalive: a plain send, which may not outlive the page; the next load replays it.
        if (byteLength({ clientId, seq: numbering.nextSeq(), ...toPatchBody(view.unconfirmedChanges()) }) > KEEPALIVE_MAX_BYTES) {
          sync()
          return
        }
        const replaced = view.queue
        patch = seal(true)
        for (const queued of replaced) barriers.replace(queued.ticket, patch.ticket)
      } else if (view.queue[0] && !sender.isSending() && byteLength(view.queue[0].body) <= KEEPALIVE_MAX_BYTES) {
        patch = view.queue[0]
      }
      if (!patch) return
      void options.persist()
      sender.send(patch, true)
    },
    async flush(timeoutMs, started) {
      // "Before the call" is fixed now: the pending changes become a patch of their own, and the
      // flush waits for the patches queued at this moment.
      if (view.pending.size > 0) seal()
      const ticketsNow = numbering.lastTicket()
      const mine = view.queue.map((patch) => patch.ticket)
      const wasReady = options.isReady()
      await started
      // A closed page's left-over changes were made before this call too: the flush waits for them.
      const leftovers = wasReady ? [] : view.queue.map((patch) => patch.ticket).filter((ticket) => ticket > ticketsNow)
      const outstanding = [...mine, ...leftovers].filter((ticket) => view.queue.some((patch) => patch.ticket === ticket))
      if (outstanding.length === 0) return
      if (!status.current.isOnline)
        throw new SessionError('offline', 'Offline: changes are kept and will be sent when back online', undefined, true)
      const confirmed = barriers.wait(outstanding, timeoutMs)
      sync()
      return confirmed
    },
  }
}
