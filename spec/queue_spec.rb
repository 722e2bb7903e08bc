# frozen_string_literal: true

RSpec.describe ProcessShared::Queue do
  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  it "is a FIFO of Marshal'd objects, with Thread::Queue's names" do
    q = described_class.new
    expect(q.push(1)).to be(q)
    q << "two"
    q.enq([3, { four: 4.0 }])
    q.push(nil)
    expect([q.size, q.length, q.empty?]).to eq([4, 4, false])
    expect([q.pop, q.shift, q.deq, q.pop]).to eq([1, "two", [3, { four: 4.0 }], nil])
    expect(q.empty?).to be(true)
    expect([q.capacity, q.max]).to eq([1 << 20, nil])
  end

  it "carries objects between processes in order, each exactly once" do
    q = described_class.new(capacity: 512) # small: it wraps and fills all the time
    results = described_class.new
    producers = Array.new(2) { |p| fork_child { 500.times { |i| q.push([p, i, "x" * (i % 40)]) } } }
    consumers = Array.new(2) do
      fork_child do
        got = []
        while (item = q.pop)
          got << item.first(2)
        end
        results.push(got)
      end
    end
    wait_children(producers)
    q.close
    wait_children(consumers)
    per_consumer = Array.new(2) { results.pop }
    expect(per_consumer.flatten(1).sort).to eq((0..1).flat_map { |p| (0...500).map { |i| [p, i] } })
    per_consumer.each do |got| # each consumer sees each producer's items in the order they were pushed
      got.group_by(&:first).each_value { |items| expect(items.map(&:last)).to eq(items.map(&:last).sort) }
    end
  end

  it "blocks while full (by bytes or by max) and times out with nil" do
    q = described_class.new(capacity: 100, max: 2)
    q.push(1)
    q.push(2)
    t = now
    expect(q.push(3, timeout: 0.05)).to be_nil
    expect(now - t).to be >= 0.05
    expect(q.push(3, timeout: 0)).to be_nil
    pusher = Thread.new { q.push(3, timeout: 10) }
    sleep 0.001 until q.num_waiting == 1
    expect(q.pop).to eq(1)
    expect(pusher.value).to be(q)
    expect([q.pop, q.pop]).to eq([2, 3])
    big = described_class.new(capacity: 64)
    big.push("a" * 40)
    expect(big.push("b" * 40, timeout: 0.01)).to be_nil # 2 records do not fit in 64 bytes
  end

  it "waits while empty: pop(timeout:) gives nil, pop(true) raises ThreadError" do
    q = described_class.new
    expect(q.pop(timeout: 0.02)).to be_nil
    expect { q.pop(true) }.to raise_error(ThreadError, "queue empty")
    popper = Thread.new { q.pop }
    sleep 0.001 until popper.status == "sleep"
    q.push(:hello)
    expect(popper.value).to eq(:hello)
  end

  it "push(obj, true) raises ThreadError when full, as SizedQueue#push(obj, true), and takes nothing" do
    q = described_class.new(capacity: 100, max: 2)
    expect(q.push(1, true)).to be(q)
    q.push(2, true)
    expect { q.push(3, true) }.to raise_error(ThreadError, "queue full")
    expect(q.size).to eq(2)
    by_bytes = described_class.new(capacity: 64)
    by_bytes.push("a" * 40, true)
    expect { by_bytes.push("b" * 40, true) }.to raise_error(ThreadError, "queue full")
    expect { q.push(3, true, timeout: 1) }.to raise_error(ArgumentError, /non_block/)
    expect { q.pop(true, timeout: 1) }.to raise_error(ArgumentError, /non_block/)
    q.close # full and closed: non_block says "full" (SizedQueue#push's order), a blocking push "closed"
    expect { q.push(3, true) }.to raise_error(ThreadError, "queue full")
    expect { q.push(3) }.to raise_error(ClosedQueueError)
    expect([q.pop, q.pop, q.size]).to eq([1, 2, 0])
    expect { q.push(3, true) }.to raise_error(ClosedQueueError)
  end

  it "push(obj, true) does not wait for a full queue in another process" do
    q = described_class.new(max: 1)
    h = handshake
    pid = fork_child do
      q.push(:theirs)
      h.signal
    end
    h.wait
    wait_child(pid)
    t = now
    expect { q.push(:mine, true) }.to raise_error(ThreadError)
    expect(now - t).to be < 0.5
    expect(q.pop).to eq(:theirs)
  end

  it "Queue.open yields a queue, returns the block's value and releases only this handle" do
    name = "spec.qopen.#{Process.pid}.#{rand(1 << 30)}"
    other = described_class.new(name: name, capacity: 4096)
    kept = nil
    value = described_class.open(name: name, capacity: 4096) do |q|
      kept = q
      q.push(:through_open)
      :block_value
    end
    expect(value).to eq(:block_value)
    expect { kept.size }.to raise_error(ProcessShared::ClosedError)
    expect(kept.inspect).to match(/released/)
    expect(kept.closed?).to be(true) # this handle
    expect { kept.close }.to raise_error(ProcessShared::ClosedError) # it cannot close the queue any more
    expect(other.closed?).to be(false) # the queue itself stays open for everyone
    expect(other.pop(true)).to eq(:through_open)
    expect(described_class.open(capacity: 64)).to be_a(described_class) # without a block: new
  ensure
    described_class.unlink(name)
  end

  it "close: pushes raise ClosedQueueError, pops drain then give nil, waiters are woken" do
    q = described_class.new(max: 1)
    popper_q = described_class.new
    popper = Thread.new { popper_q.pop }
    q.push(:kept)
    pusher = Thread.new do
      q.push(:blocked)
    rescue ClosedQueueError => e
      e
    end
    sleep 0.001 until q.num_waiting == 1 && popper.status == "sleep"
    q.close
    popper_q.close
    expect(pusher.value).to be_a(ClosedQueueError)
    expect(popper.value).to be_nil
    expect(q.closed?).to be(true)
    expect { q.push(1) }.to raise_error(ClosedQueueError)
    expect([q.pop, q.pop]).to eq([:kept, nil])
    expect { q.pop(true) }.to raise_error(ThreadError)
  end

  it "rejects what cannot be stored, enqueuing nothing" do
    q = described_class.new(capacity: 32)
    expect { q.push(proc {}) }.to raise_error(TypeError)
    expect { q.push("x" * 100) }.to raise_error(ArgumentError, /exceeds the queue capacity of 32/)
    expect { q.push(1, timeout: -1) }.to raise_error(ArgumentError)
    expect { q.pop(timeout: Float::NAN) }.to raise_error(ArgumentError)
    expect(q.size).to eq(0)
    expect { described_class.new(capacity: 0) }.to raise_error(ArgumentError)
    expect { described_class.new(capacity: 2**31) }.to raise_error(ArgumentError)
    expect { described_class.new(capacity: "1") }.to raise_error(TypeError)
    expect { described_class.new(max: 0) }.to raise_error(ArgumentError)
    expect { described_class.new(max: 1.5) }.to raise_error(TypeError)
    expect { described_class.new(size: 1) }.to raise_error(ArgumentError)
  end

  it "leaves an element this process cannot load at the front, for a process that can" do
    q = described_class.new
    only_in_child = Class.new
    stub_const("QueueSpecOnlyInChild", only_in_child)
    q.push(QueueSpecOnlyInChild.new)
    q.push(:next)
    hide_const("QueueSpecOnlyInChild")
    expect { q.pop }.to raise_error(ArgumentError, /undefined class/)
    expect(q.size).to eq(2)
    wait_child(fork_child do
      stub_const("QueueSpecOnlyInChild", only_in_child) # this process knows the class
      exit!(q.pop.is_a?(only_in_child) ? 0 : 2)
    end)
    expect([q.size, q.pop]).to eq([1, :next])
  end

  it "clears, and inspects without blocking" do
    q = described_class.new(capacity: 1024, max: 5)
    3.times { |i| q << i }
    expect(q.inspect).to eq("#<ProcessShared::Queue size=3 capacity=1024 max=5 closed=false waiting=0>")
    expect(q.clear).to be(q)
    expect([q.size, q.pop(timeout: 0)]).to eq([0, nil])
  end

  it "survives producers and consumers SIGKILLed mid-operation: usable, and no torn record" do
    q = described_class.new(capacity: 4096)
    bad = ProcessShared::AtomicInteger.new
    popped = ProcessShared::AtomicInteger.new
    worker = lambda do |role|
      fork_child do
        if role == :push
          i = 0
          loop { q.push([i, "y" * (i % 300), i.to_s]) && i += 1 }
        else
          loop do
            item = q.pop(timeout: 0.05) or next
            bad.increment unless item[1] == "y" * (item[0] % 300) && item[2] == item[0].to_s
            popped.increment
          end
        end
      end
    end
    roles = %i[push push pop pop]
    pids = roles.map { |r| worker.call(r) }
    40.times do |n|
      sleep 0.005
      i = n % pids.size
      Process.kill(:KILL, pids[i])
      Process.wait(pids[i])
      @__children.delete(pids[i])
      pids[i] = worker.call(roles[i])
    end
    pids.each do |pid|
      Process.kill(:KILL, pid)
      Process.wait(pid)
      @__children.delete(pid)
    end
    expect(bad.value).to eq(0)
    expect(popped.value).to be > 50
    left = [] # (the pushers may have filled it)
    while (item = q.pop(timeout: 0))
      left << item
    end
    expect(left).to all(satisfy { |i, y, s| y == "y" * (i % 300) && s == i.to_s })
    expect(q.push(:still_works, timeout: 5)).to be(q)
    expect(q.pop(true)).to eq(:still_works)
  end
end
