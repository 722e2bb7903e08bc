# frozen_string_literal: true

module ProcessShared
  class Postgres
    # The tables and functions the PostgreSQL backend keeps in the database: the backend's whole protocol,
    # in one place. Every state change is one statement (one round trip, one transaction); waits use the
    # server's lock queue (advisory locks, +lock_timeout+) or LISTEN/NOTIFY.
    #
    # Tables (all keyed by namespace and name):
    # - +process_shared_objects+: one row per object. +kind+ and +params+ (what it was created with) make a
    #   second open of another kind or shape fail; +key+ is the advisory-lock key (see {Postgres.key});
    #   +value+ is the counter of the kind (permits, integer, flag, count, arrivals); +generation+ counts
    #   events (sets, barrier trips).
    # - A sequence per lock (mutex, readers-writer lock), +process_shared_lock_<key in hex>+: each exclusive
    #   acquisition and each clean release advance it by one, so it is odd while a writer holds the lock,
    #   even otherwise. An exclusive acquirer whose advance lands on an even value knows the last holder's
    #   session ended holding the lock (the server releases a dead session's advisory locks): it advances
    #   once more and is told ({OwnerDeadError}). The fencing token of the hold is (value + 1) / 2: strictly
    #   increasing. A sequence changes outside transactions and writes no row, so a lock round trip costs
    #   little more than the bare advisory lock's. (After a server crash a sequence may jump ahead, which can
    #   report one death that did not happen; tokens stay increasing.)
    # - +process_shared_counters+: the cells of a Counters, one row each (no false sharing of row locks).
    # - +process_shared_items+: the elements of a Queue (Marshal dumps), popped with +FOR UPDATE SKIP
    #   LOCKED+: an element is gone only when the popping transaction commits.
    # - +process_shared_waiters+: sessions waiting on a ConditionVariable or Queue, with the session's
    #   backend pid and start time, so that waiters whose session ended are skipped and not counted.
    #
    # Every waker NOTIFYs the object's channel (+ps_+ and the key in hex); a condition-variable signal
    # NOTIFYs the chosen waiter's session channel (+ps_s_+ and the session id).
    module Schema
      # Bumped with every change of the tables or functions (an older install is brought up to date).
      VERSION = 1

      # Serialises concurrent installs (an arbitrary, fixed advisory-lock key).
      INSTALL_KEY = 0x70735f7363686d61

      # The whole schema; idempotent.
      SQL = <<~'SQL'
        CREATE TABLE IF NOT EXISTS process_shared_schema (version integer NOT NULL);
        CREATE TABLE IF NOT EXISTS process_shared_objects (
          namespace text NOT NULL,
          name text NOT NULL,
          kind text NOT NULL,
          params text NOT NULL DEFAULT '',
          key bigint NOT NULL,
          value bigint NOT NULL DEFAULT 0,
          generation bigint NOT NULL DEFAULT 0,
          broken boolean NOT NULL DEFAULT false,
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (namespace, name));
        CREATE TABLE IF NOT EXISTS process_shared_counters (
          namespace text NOT NULL, name text NOT NULL, idx integer NOT NULL, value bigint NOT NULL DEFAULT 0,
          PRIMARY KEY (namespace, name, idx));
        CREATE TABLE IF NOT EXISTS process_shared_items (
          id bigserial PRIMARY KEY, namespace text NOT NULL, name text NOT NULL, payload bytea NOT NULL);
        CREATE INDEX IF NOT EXISTS process_shared_items_queue ON process_shared_items (namespace, name, id);
        -- When this session began: with its backend pid, the session's identity (pids are reused).
        CREATE OR REPLACE FUNCTION process_shared_backend_start() RETURNS timestamptz
        LANGUAGE sql STABLE AS $$ SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid() $$;
        CREATE TABLE IF NOT EXISTS process_shared_waiters (
          id bigserial PRIMARY KEY, namespace text NOT NULL, name text NOT NULL, session text NOT NULL,
          pid integer NOT NULL DEFAULT pg_backend_pid(),
          started timestamptz NOT NULL DEFAULT process_shared_backend_start());
        CREATE INDEX IF NOT EXISTS process_shared_waiters_object ON process_shared_waiters (namespace, name, id);

        -- int64 arithmetic that wraps as C's does.
        CREATE OR REPLACE FUNCTION process_shared_wrap(n numeric) RETURNS bigint
        LANGUAGE sql IMMUTABLE AS $$
          SELECT (n - 18446744073709551616 * floor((n + 9223372036854775808) / 18446744073709551616))::bigint
        $$;

        -- Opens (creating if missing) an object; returns its kind and params (the caller checks them).
        CREATE OR REPLACE FUNCTION process_shared_open(ns text, nm text, k text, p text, ky bigint, v bigint,
                                                       cells integer)
        RETURNS TABLE (kind text, params text) LANGUAGE plpgsql SET client_min_messages = warning AS $$
        BEGIN
          INSERT INTO process_shared_objects AS o (namespace, name, kind, params, key, value)
            VALUES (ns, nm, k, p, ky, v) ON CONFLICT DO NOTHING;
          IF FOUND AND cells > 0 THEN
            INSERT INTO process_shared_counters (namespace, name, idx)
              SELECT ns, nm, i FROM generate_series(0, cells - 1) i ON CONFLICT DO NOTHING;
          END IF;
          IF FOUND AND k IN ('mutex', 'read_write_lock') THEN
            -- The lock's sequence (see process_shared_lock). The row's insert serialises its creation.
            EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', 'process_shared_lock_' || lpad(to_hex(ky), 16, '0'));
          END IF;
          RETURN QUERY SELECT o.kind, o.params FROM process_shared_objects o
                        WHERE o.namespace = ns AND o.name = nm;
        END $$;

        -- The lock protocol (mutex, readers-writer lock), with the lock's sequence (process_shared_lock_<key
        -- in hex>; see the module comment): its value is odd while an exclusive hold is on, even otherwise.
        -- The fast path, a lock that is free, is one statement of the caller's (see ExclusiveLock); this
        -- function is the waiting path. wait_ms: -1 = forever, else lock_timeout. No row: not acquired.
        -- value: the sequence after the acquisition; dead: a holder's session ended holding the lock.
        CREATE OR REPLACE FUNCTION process_shared_lock(ky bigint, seq text, wait_ms integer, shared boolean)
        RETURNS TABLE (value bigint, dead boolean) LANGUAGE plpgsql AS $$
        DECLARE
          v bigint;
        BEGIN
          IF wait_ms > 0 THEN
            PERFORM set_config('lock_timeout', wait_ms || 'ms', true);
          END IF;
          BEGIN
            IF shared THEN PERFORM pg_advisory_lock_shared(ky); ELSE PERFORM pg_advisory_lock(ky); END IF;
          EXCEPTION WHEN lock_not_available THEN
            RETURN;
          END;
          IF shared THEN
            RETURN QUERY SELECT * FROM process_shared_after_read_lock(seq);
            RETURN;
          END IF;
          v := nextval(seq::regclass);
          IF v % 2 = 0 THEN
            RETURN QUERY SELECT nextval(seq::regclass), true;
            RETURN;
          END IF;
          RETURN QUERY SELECT v, false;
        END $$;

        -- A reader that got its share: an odd value means the last writer died holding the lock; it is
        -- marked released (setval to the same value by every reader that saw it: readers exclude writers).
        CREATE OR REPLACE FUNCTION process_shared_after_read_lock(seq text)
        RETURNS TABLE (value bigint, dead boolean) LANGUAGE plpgsql AS $$
        DECLARE
          v bigint := coalesce(pg_sequence_last_value(seq::regclass), 0);
        BEGIN
          IF v % 2 = 1 THEN
            PERFORM setval(seq::regclass, v + 1);
            RETURN QUERY SELECT v + 1, true;
            RETURN;
          END IF;
          RETURN QUERY SELECT v, false;
        END $$;

        -- Whether this session holds the advisory lock (after a cancelled acquire: it may).
        CREATE OR REPLACE FUNCTION process_shared_mine(ky bigint, shared boolean)
        RETURNS boolean LANGUAGE sql STABLE AS $$
          SELECT EXISTS (SELECT 1 FROM pg_locks l
            WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.mode = (CASE WHEN shared THEN 'ShareLock' ELSE 'ExclusiveLock' END)
              AND l.classid = ((ky >> 32) & 4294967295)::oid AND l.objid = (ky & 4294967295)::oid)
        $$;

        -- Releases an exclusive hold whose acquire was cancelled after the advisory lock was granted: the
        -- value is made even whether or not the acquire had counted itself (so such a cancel, in the
        -- instant after a holder died, can hide that death from the next acquirer).
        CREATE OR REPLACE FUNCTION process_shared_unlock_after_cancel(ky bigint, seq text)
        RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          IF coalesce(pg_sequence_last_value(seq::regclass), 0) % 2 = 1 THEN
            PERFORM nextval(seq::regclass);
          END IF;
          RETURN pg_advisory_unlock(ky);
        END $$;

        -- The holder (backend pid) of an exclusive advisory lock, if any.
        CREATE OR REPLACE FUNCTION process_shared_holder(ky bigint)
        RETURNS integer LANGUAGE sql STABLE AS $$
          SELECT l.pid FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.mode = 'ExclusiveLock'
             AND l.classid = ((ky >> 32) & 4294967295)::oid AND l.objid = (ky & 4294967295)::oid
           LIMIT 1
        $$;

        -- Removes an object: its row, cells, elements, waiters and sequences. Whether there was one.
        CREATE OR REPLACE FUNCTION process_shared_unlink(ns text, nm text)
        RETURNS boolean LANGUAGE plpgsql SET client_min_messages = warning AS $$
        DECLARE
          ky bigint;
        BEGIN
          DELETE FROM process_shared_objects o WHERE o.namespace = ns AND o.name = nm RETURNING o.key INTO ky;
          DELETE FROM process_shared_items i WHERE i.namespace = ns AND i.name = nm;
          DELETE FROM process_shared_counters c WHERE c.namespace = ns AND c.name = nm;
          DELETE FROM process_shared_waiters w WHERE w.namespace = ns AND w.name = nm;
          IF ky IS NOT NULL THEN
            EXECUTE format('DROP SEQUENCE IF EXISTS %I', 'process_shared_lock_' || lpad(to_hex(ky), 16, '0'));
          END IF;
          RETURN ky IS NOT NULL;
        END $$;

        -- Whether anyone holds the advisory lock (exclusive or shared), without taking it.
        CREATE OR REPLACE FUNCTION process_shared_held(ky bigint, exclusive_only boolean DEFAULT false)
        RETURNS boolean LANGUAGE sql STABLE AS $$
          SELECT EXISTS (SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid = ((ky >> 32) & 4294967295)::oid AND l.objid = (ky & 4294967295)::oid
              AND (NOT exclusive_only OR l.mode = 'ExclusiveLock'))
        $$;

        -- Changes value by delta within [lo, hi]; no row if that would leave the range. NOTIFYs if woke.
        CREATE OR REPLACE FUNCTION process_shared_add(ns text, nm text, delta bigint, lo bigint, hi bigint,
                                                      chan text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
          v bigint;
        BEGIN
          UPDATE process_shared_objects o SET value = o.value + delta
            WHERE o.namespace = ns AND o.name = nm AND o.value + delta BETWEEN lo AND hi
            RETURNING o.value INTO v;
          IF FOUND AND chan IS NOT NULL THEN
            PERFORM pg_notify(chan, '');
          END IF;
          RETURN v;
        END $$;

        -- Sets value (and bumps generation when it changes); returns the old value. NOTIFYs.
        CREATE OR REPLACE FUNCTION process_shared_set(ns text, nm text, v bigint, chan text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
          old bigint;
        BEGIN
          SELECT o.value INTO old FROM process_shared_objects o
            WHERE o.namespace = ns AND o.name = nm FOR UPDATE;
          UPDATE process_shared_objects o
            SET value = v, generation = o.generation + (CASE WHEN old = v THEN 0 ELSE 1 END)
            WHERE o.namespace = ns AND o.name = nm;
          IF chan IS NOT NULL AND old IS DISTINCT FROM v THEN
            PERFORM pg_notify(chan, '');
          END IF;
          RETURN old;
        END $$;

        -- Barrier: an arrival. Returns -1 if broken, -2 if this arrival tripped it, else the generation.
        CREATE OR REPLACE FUNCTION process_shared_arrive(ns text, nm text, parties bigint, chan text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
          r record;
        BEGIN
          SELECT o.value, o.generation, o.broken INTO r FROM process_shared_objects o
            WHERE o.namespace = ns AND o.name = nm FOR UPDATE;
          IF r.broken THEN
            RETURN -1;
          END IF;
          IF r.value + 1 >= parties THEN
            UPDATE process_shared_objects o SET value = 0, generation = o.generation + 1
              WHERE o.namespace = ns AND o.name = nm;
            PERFORM pg_notify(chan, '');
            RETURN -2;
          END IF;
          UPDATE process_shared_objects o SET value = o.value + 1 WHERE o.namespace = ns AND o.name = nm;
          RETURN r.generation;
        END $$;

        -- Barrier: a waiter of generation gen gives up (breaking it) unless it tripped meanwhile.
        -- Returns whether it had tripped.
        CREATE OR REPLACE FUNCTION process_shared_break(ns text, nm text, gen bigint, chan text)
        RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE process_shared_objects o SET broken = true
            WHERE o.namespace = ns AND o.name = nm AND o.generation = gen;
          IF FOUND THEN
            PERFORM pg_notify(chan, '');
            RETURN false;
          END IF;
          RETURN true;
        END $$;

        -- Condition variable / queue: wakes the oldest (or every) waiter whose session is alive, and drops
        -- the rows of waiters whose session ended. Returns how many were woken.
        CREATE OR REPLACE FUNCTION process_shared_wake(ns text, nm text, all_of_them boolean)
        RETURNS integer LANGUAGE plpgsql AS $$
        DECLARE
          w record;
          n integer := 0;
        BEGIN
          FOR w IN SELECT * FROM process_shared_waiters x WHERE x.namespace = ns AND x.name = nm
                   ORDER BY x.id FOR UPDATE SKIP LOCKED LOOP
            DELETE FROM process_shared_waiters x WHERE x.id = w.id;
            IF EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid AND a.backend_start = w.started) THEN
              PERFORM pg_notify('ps_s_' || w.session, w.id::text);
              n := n + 1;
              EXIT WHEN NOT all_of_them;
            END IF;
          END LOOP;
          RETURN n;
        END $$;

        -- Queue: appends unless closed (-1) or full (-2); returns the new size. NOTIFYs poppers.
        CREATE OR REPLACE FUNCTION process_shared_push(ns text, nm text, item bytea, max_items bigint, chan text)
        RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
          closed boolean;
          n bigint;
        BEGIN
          -- The object's row lock orders pushes (and makes the size check exact).
          SELECT o.broken INTO closed FROM process_shared_objects o
            WHERE o.namespace = ns AND o.name = nm FOR UPDATE;
          IF closed THEN
            RETURN -1;
          END IF;
          IF max_items > 0 THEN
            SELECT count(*) INTO n FROM process_shared_items i WHERE i.namespace = ns AND i.name = nm;
            IF n >= max_items THEN
              RETURN -2;
            END IF;
          END IF;
          INSERT INTO process_shared_items (namespace, name, payload) VALUES (ns, nm, item);
          PERFORM pg_notify(chan, '');
          RETURN coalesce(n, 0) + 1;
        END $$;

        INSERT INTO process_shared_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM process_shared_schema);
      SQL
    end
  end
end
