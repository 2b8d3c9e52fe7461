// @ts-check
// The bytes of the files a conversation attached, in IndexedDB keyed by their SHA-256,
// so that sessionStorage holds only references (storage.js) and stays far below its
// quota, while a later question after a reload can still send them again (the Messages
// API is stateless: every request carries the whole conversation).
//
// IndexedDB outlives the tab, unlike sessionStorage: New chat deletes the conversation's
// files, and a file no page has used for PRUNE_AFTER_MS is deleted at the next load.
// Every failure (no IndexedDB, quota, a database deleted by the user) leaves the bytes
// in memory for this page only; a reload then finds them gone, which attachments.js
// turns into a note in place of the file.

const DB_NAME = "sseserver.files";
const DB_VERSION = 1;
const BYTES = "bytes";
const SEEN = "seen";
/** A file unused this long is deleted: past any conversation a tab still shows. */
const PRUNE_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @param {IDBTransaction} transaction
 * @returns {Promise<void>}
 */
function committed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error);
  });
}

/** @returns {Promise<IDBDatabase | null>} null where the browser refuses IndexedDB */
async function openDatabase() {
  try {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(BYTES);
      request.result.createObjectStore(SEEN);
    };
    const db = await done(request);
    // Let another tab (or the user) delete or upgrade the database.
    db.onversionchange = () => db.close();
    return db;
  } catch {
    return null;
  }
}

export class FileStore {
  constructor() {
    /** @type {Map<string, ArrayBuffer>} the bytes this page has had, by hash */
    this.memory = new Map();
    /** @type {Map<string, Promise<void>>} writes still under way, by hash */
    this.writing = new Map();
    /** @type {Promise<IDBDatabase | null> | null} */
    this.db = null;
  }

  /** @returns {Promise<IDBDatabase | null>} */
  database() {
    this.db ??= openDatabase();
    return this.db;
  }

  /**
   * Keep a file's bytes: at once for this page, and in IndexedDB for a reload.
   * @param {string} hash
   * @param {ArrayBuffer} bytes
   * @returns {Promise<void>} settles when the write is over, whether it worked or not
   */
  keep(hash, bytes) {
    this.memory.set(hash, bytes);
    const pending = this.writing.get(hash);
    if (pending) return pending;
    const write = this.#write(hash, bytes).finally(() => this.writing.delete(hash));
    this.writing.set(hash, write);
    return write;
  }

  /** @param {string} hash @param {ArrayBuffer} bytes */
  async #write(hash, bytes) {
    const db = await this.database();
    if (!db) return;
    try {
      const transaction = db.transaction([BYTES, SEEN], "readwrite");
      transaction.objectStore(BYTES).put(bytes, hash);
      transaction.objectStore(SEEN).put(Date.now(), hash);
      await committed(transaction);
    } catch {
      // Quota or a closed database: the bytes stay in memory for this page.
    }
  }

  /**
   * Wait for the writes of these files, so that a reload right after finds them.
   * @param {string[]} hashes
   */
  async settled(hashes) {
    await Promise.all(hashes.map((hash) => this.writing.get(hash)));
  }

  /**
   * A file's bytes, or null when neither this page nor IndexedDB has them.
   * @param {string} hash
   * @returns {Promise<ArrayBuffer | null>}
   */
  async bytes(hash) {
    const known = this.memory.get(hash);
    if (known) return known;
    const db = await this.database();
    if (!db) return null;
    try {
      const transaction = db.transaction([BYTES, SEEN], "readwrite");
      const found = await done(transaction.objectStore(BYTES).get(hash));
      if (!(found instanceof ArrayBuffer)) return null;
      transaction.objectStore(SEEN).put(Date.now(), hash);
      this.memory.set(hash, found);
      return found;
    } catch {
      return null;
    }
  }

  /**
   * Delete files from this page and from IndexedDB (New chat, a file removed unsent).
   * @param {Iterable<string>} hashes
   */
  async forget(hashes) {
    const gone = [...hashes];
    for (const hash of gone) this.memory.delete(hash);
    const db = await this.database();
    if (!db || gone.length === 0) return;
    try {
      const transaction = db.transaction([BYTES, SEEN], "readwrite");
      for (const hash of gone) {
        transaction.objectStore(BYTES).delete(hash);
        transaction.objectStore(SEEN).delete(hash);
      }
      await committed(transaction);
    } catch {
      // Nothing to tell: pruning deletes them later.
    }
  }

  /** Delete the files no page has used for PRUNE_AFTER_MS. */
  async prune() {
    const db = await this.database();
    if (!db) return;
    try {
      const transaction = db.transaction([BYTES, SEEN], "readwrite");
      const seen = transaction.objectStore(SEEN);
      const [hashes, times] = await Promise.all([done(seen.getAllKeys()), done(seen.getAll())]);
      const before = Date.now() - PRUNE_AFTER_MS;
      hashes.forEach((hash, index) => {
        if (typeof times[index] === "number" && times[index] >= before) return;
        transaction.objectStore(BYTES).delete(hash);
        seen.delete(hash);
      });
      await committed(transaction);
    } catch {
      // A later load tries again.
    }
  }
}
