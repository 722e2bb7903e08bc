# frozen_string_literal: true

module ProcessShared
  # Included by every error the gem defines, so that +rescue ProcessShared::Error+ catches them all. It is a
  # module, not a class, so that each error can subclass what the standard library raises for the same
  # misuse (+ThreadError+, +IOError+, +ClosedQueueError+, +TypeError+): code written for +Thread::Mutex+,
  # +Thread::Queue+ or +IO+ rescues ours too.
  module Error; end

  # Ownership misuse: unlocking a lock the calling thread does not hold, re-locking a non-reentrant lock it
  # holds, posting a {BinarySemaphore} above 1. A +ThreadError+, as +Thread::Mutex+ raises for the same.
  class ProcessError < ThreadError
    include Error
  end

  # Any use of an object after +close+ (of this process's handle): an +IOError+, as for a closed IO.
  class ClosedError < IOError
    include Error
  end

  # A push on a {Queue} that was closed (by any process): a +::ClosedQueueError+ (so a +StopIteration+), as
  # +Thread::Queue#push+ raises after +close+.
  class ClosedQueueError < ::ClosedQueueError
    include Error
  end

  # A named object that cannot be opened as asked: it is of another class, or of another size or layout
  # (a SharedMemory or Queue of another capacity, a Barrier with other parties), or the file under that
  # name is not a process_shared object at all (left alone). A +TypeError+: the object found is not of
  # the type the caller asked for.
  class IncompatibleError < TypeError
    include Error
  end

  # A failure inside the gem that is not the caller's fault (a bug: please report it).
  class InternalError < RuntimeError
    include Error
  end

  # The process (or thread) that held a lock died holding it. The lock is now held by the caller, who should
  # repair the protected data and unlock (or pass +on_owner_dead:+ to +synchronize+). {#pid} names the dead
  # holder.
  #
  # Deliberately a +StandardError+ and not a +ThreadError+: code written for +Thread::Mutex+ that rescues
  # +ThreadError+ around +lock+ (say, to ignore a recursive lock) would otherwise swallow it and go on
  # holding the lock, with the protected data half-written, without ever knowing.
  class OwnerDeadError < StandardError
    include Error

    # @return [Integer, nil] pid of the process that died holding the lock
    attr_reader :pid

    def initialize(msg = "the owner of the lock died holding it", pid: nil)
      super(msg)
      @pid = pid
    end
  end

  # The holder of a lock lost it (on the PostgreSQL backend, {Postgres}): its connection to the server ended
  # (the session was terminated, the server restarted, the network failed) while it held the lock, so the
  # server released it and another owner may hold it now. Raised by the holder's next call on that lock;
  # the lock is not held afterwards. A +StandardError+, not a +ThreadError+, for the reason {OwnerDeadError} is one.
  class LockLostError < StandardError
    include Error

    # @return [Integer, nil] the fencing token the lost hold had
    attr_reader :token

    def initialize(msg = "the lock was lost with the connection that held it", token: nil)
      super(msg)
      @token = token
    end
  end
end
