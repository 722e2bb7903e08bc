# frozen_string_literal: true

# Calls every public method of the API at least once (most of them with each arity), for spec/rbs_spec.rb,
# which runs this file under rbs's runtime type check: each call is checked against sig/. Prints "tour: ok".
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "process_shared"

PS = ProcessShared

# Takes the values of calls made only for their type check.
def touch(*values) = values

def expect_raise(klass)
  yield
  raise "expected #{klass}"
rescue klass
  nil
end

# SharedMemory: every accessor of every type, bytes, strings, objects, lifecycle.
mem = PS::SharedMemory.new(256)
%w[char uchar short ushort int uint long ulong long_long ulong_long int8 uint8 int16 uint16 int32 uint32
   int64 uint64 size_t float double pointer].each do |t|
  v = %w[float double].include?(t) ? 1.5 : 1
  mem.public_send("put_#{t}", 8, v)
  mem.public_send("get_#{t}", 8)
  mem.public_send("write_#{t}", v)
  mem.public_send("read_#{t}")
  mem.public_send("put_array_of_#{t}", 16, [v, v])
  mem.public_send("get_array_of_#{t}", 16, 2)
  mem.public_send("write_array_of_#{t}", [v])
  mem.public_send("read_array_of_#{t}", 1)
end
mem.put_pointer(0, nil)
mem.put_pointer(0, Struct.new(:address).new(42))
mem.put_bytes(0, "abc")
mem.put_bytes(0, "abc", 1)
mem.put_bytes(0, "abc", 1, 1)
mem.get_bytes(0, 3)
mem.write_bytes("xyz")
mem.write_bytes("xyz", 1, nil)
mem.read_bytes(2)
mem.put_string(0, "hi")
mem.get_string(0)
mem.get_string(0, 2)
mem.write_string("hello")
mem.write_string("hello", 2)
mem.read_string
mem.read_string(3)
mem.clear
mem.put_object(0, [1, "two"])
mem.get_object(0)
mem.write_object({ a: 1 })
mem.read_object
touch(mem.size, mem.type, mem.type_size, mem.count, mem.address, mem.inspect)
PS::SharedMemory.new
PS::SharedMemory.new(:int)
PS::SharedMemory.new(:double, 4)
PS::SharedMemory.open(8, &:read_int)
PS::SharedMemory.open(8).close
mem.close
mem.closed?
mem.inspect

ary = PS::SharedArray.new(:int, 3)
ary[0] = 1
ary[-1] = 3
ary[1]
ary.to_a
ary.length
ary.each { |x| touch(x) }
ary.each
ary.first
ary.first(2)
ary.take(1)
ary.min
ary.max(2)
ary.each_slice(2).to_a
PS::SharedArray.new
PS::SharedArray.new(:double).tap { |a| a[0] = 2.5 }[0]
PS::SharedArray.new(16)

# Locks.
mutex = PS::Mutex.new
mutex.lock
touch(mutex.locked?, mutex.owned?, mutex.owner_pid, mutex.inspect)
mutex.sleep(0.01)
mutex.unlock
mutex.try_lock
mutex.unlock
mutex.try_lock(0.1)
mutex.unlock
mutex.synchronize { 1 }
expect_raise(PS::ProcessError) { mutex.unlock }
PS::Mutex.open { |m| m.synchronize { m.owned? } }

mon = PS::Monitor.new
mon.enter
mon.mon_enter
mon.mon_count
mon.exit
mon.mon_exit
mon.try_enter
mon.try_enter(0.1)
mon.mon_try_enter
mon.try_mon_enter
touch(mon.mon_locked?, mon.mon_owned?, mon.owner_pid, mon.inspect)
mon.mon_check_owner
4.times { mon.unlock }
mon.lock
mon.unlock
mon.synchronize { 1 }
mon.mon_synchronize { 2 }
cond = mon.new_cond
mon.synchronize do
  cond.wait(0.01)
  cond.wait_until { true }
  cond.wait_while { false }
  cond.signal
  cond.broadcast
  mon.wait_for_cond(cond, 0.01)
end
cond.closed?
cond.close

cv = PS::ConditionVariable.new
mutex.synchronize { cv.wait(mutex, 0.01) }
mon.synchronize { cv.wait(mon, 0.01) }
mon.synchronize { mon.wait_for_cond(cv, 0.01) }
touch(cv.signal, cv.broadcast, cv.waiters, cv.inspect)

mixed = []
mixed.extend(PS::MonitorMixin)
mixed.mon_enter
touch(mixed.mon_locked?, mixed.mon_owned?)
mixed.__send__(:mon_check_owner) # private, as in stdlib's MonitorMixin
mixed.mon_exit
mixed.mon_try_enter
mixed.mon_exit
mixed.try_mon_enter(0.1)
mixed.mon_exit
mixed.synchronize { 1 }
mixed.mon_synchronize { 1 }
mixed.new_cond

sem = PS::Semaphore.new(2)
sem.wait
sem.post
sem.wait(undo: true)
sem.post
sem.try_wait
sem.post
sem.try_wait(0.1, undo: true)
sem.post
expect_raise(Errno::EAGAIN) { PS::Semaphore.new(0).try_wait }
expect_raise(Errno::ETIMEDOUT) { PS::Semaphore.new(0).try_wait(0.01) }
sem.synchronize { 1 }
touch(sem.value, sem.waiters, sem.take_reclaimed, sem.inspect)
PS::Semaphore.new
bin = PS::BinarySemaphore.new(0)
bin.post
expect_raise(PS::ProcessError) { bin.post }
lock = PS::BinarySemaphore.new.to_mtx
lock.lock
lock.locked?
lock.unlock
lock.try_lock
lock.unlock
lock.synchronize { 1 }
lock.lock
lock.sleep(0.01)
lock.unlock
lock.closed?
lock.close

rw = PS::ReadWriteLock.new
rw.acquire_read_lock
rw.release_read_lock
rw.try_read_lock
rw.release_read_lock
rw.try_read_lock(0.1)
rw.release_read_lock
rw.with_read_lock { 1 }
rw.acquire_write_lock
touch(rw.write_locked?, rw.has_waiters?, rw.inspect)
rw.release_write_lock
rw.try_write_lock
rw.release_write_lock
rw.try_write_lock(0.1)
rw.release_write_lock
rw.with_write_lock { 1 }

# Counting and signalling.
int = PS::AtomicInteger.new(5)
int.value = 3
touch(int.value, int.get, int.to_i, int.increment, int.increment(2), int.up, int.decrement, int.decrement(2),
      int.down, int.compare_and_set(int.value, 7), int.get_and_set(1), int.update { |v| v + 1 }, int.inspect)
int.set(2)
PS::AtomicInteger.new

counters = PS::Counters.new(3)
touch(counters.incr(0), counters.incr(1, 5), counters.decr(2), counters.decr(-1, 2), counters[0], counters.to_a,
      counters.size, counters.length, counters.inspect, counters.first, counters.take(2), counters.each.to_a)
counters[1] = 9
counters.each { |x| touch(x) }

event = PS::Event.new
touch(event.set?, event.try?, event.set, event.wait, event.wait(0.01), event.reset, event.wait(0), event.inspect)

latch = PS::CountDownLatch.new(2)
latch.count_down
touch(latch.count, latch.wait(0), latch.wait(0.01))
latch.count_down
latch.wait
PS::CountDownLatch.new

barrier = PS::Barrier.new(1)
touch(barrier.wait, barrier.wait(0.1), barrier.parties, barrier.number_waiting, barrier.broken?, barrier.inspect)
barrier.reset

queue = PS::Queue.new
queue.push(1)
queue << 2
queue.enq(3, timeout: 0.1)
touch(queue.pop, queue.shift, queue.deq(true), queue.pop(timeout: 0.01), queue.size, queue.length, queue.empty?,
      queue.num_waiting, queue.max, queue.capacity, queue.inspect)
PS::Queue.new(capacity: 64, max: 1).then { |q| [q.push(1), q.push(2, timeout: 0)] }
queue.clear
queue.close
queue.closed?
queue.pop

# Named objects, Openable, errors.
name = "rbs-tour-#{Process.pid}"
named = PS::Mutex.new(name: name, mode: 0o600, create: :create_only)
PS::Mutex.new(name: name, create: :open_only).close
touch(PS::Mutex.exist?(name), PS::Mutex.unlink(name))
named.close
qname = "rbs-tour-q-#{Process.pid}"
PS::Queue.new(capacity: 128, name: qname).close
PS::Queue.unlink(qname)
PS::OwnerDeadError.new.pid
PS::OwnerDeadError.new("dead", pid: 1).pid

# Every lifecycle method.
[PS::Mutex, PS::Monitor, PS::ConditionVariable, PS::Semaphore, PS::ReadWriteLock, PS::AtomicInteger,
 PS::Event, PS::CountDownLatch].each do |klass|
  obj = klass.new
  obj.inspect
  obj.close
  obj.closed?
  obj.inspect
end
[PS::Counters.new(1), PS::Barrier.new(2), PS::SharedArray.new].each do |obj|
  obj.close
  obj.closed?
end

puts "tour: ok"
