# frozen_string_literal: true

module ProcessShared
  # A flag in shared memory that processes wait for (concurrent-ruby's +Event+).
  #
  #   ready = ProcessShared::Event.new
  #   4.times { fork { ready.wait; work } }
  #   prepare
  #   ready.set          # releases all four
  #
  # Native methods: +set+ (releases every waiter; no effect if already set; returns true), +try?+ (sets it
  # if unset; true if this call set it), +reset+ (returns true), +set?+, +wait(timeout = nil)+ (true once
  # set, false if the timeout passed first; a +set+ and +reset+ while it waits still release it), +close+,
  # +closed?+, +inspect+. +wait+ releases the GVL and is interruptible.
  class Event
    extend Openable
  end
end
