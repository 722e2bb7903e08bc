# frozen_string_literal: true

RSpec.describe ProcessShared::Monitor do
  subject!(:mon) { described_class.new }

  it "is re-entrant for its owning thread" do
    mon.enter
    mon.mon_enter
    expect(mon.mon_count).to eq(2)
    mon.exit
    expect(mon).to be_mon_locked
    mon.mon_exit
    expect(mon).not_to be_mon_locked
  end

  it "has the stdlib and the original gem's names" do
    %i[enter mon_enter exit mon_exit try_enter mon_try_enter try_mon_enter synchronize mon_synchronize
       mon_locked? mon_owned? new_cond lock unlock mon_check_owner].each do |m|
      expect(mon).to respond_to(m)
    end
    mon.lock
    expect(mon).to be_mon_owned
    mon.unlock
  end

  it "raises ProcessError when exited by a thread that does not hold it" do
    expect { mon.exit }.to raise_error(ProcessShared::ProcessError)
    mon.enter
    expect do
      Thread.new do
        Thread.current.report_on_exception = false
        mon.exit
      end.join
    end.to raise_error(ProcessShared::ProcessError)
    expect { mon.mon_check_owner }.not_to raise_error
  end

  it "excludes other processes, try_enter fails and times out" do
    h = handshake
    done = handshake
    pid = fork_child do
      mon.synchronize do
        mon.synchronize do
          h.signal
          done.wait
        end
      end
    end
    h.wait
    expect(mon).to be_mon_locked
    expect(mon).not_to be_mon_owned
    expect(mon.try_enter).to be(false)
    expect(mon.mon_try_enter(0.05)).to be(false)
    done.signal
    expect(mon.try_enter(10)).to be(true)
    mon.exit
    wait_child(pid)
  end

  it "synchronize returns the block's value and exits on exceptions" do
    expect(mon.synchronize { mon.synchronize { 5 } }).to eq(5)
    expect { mon.synchronize { raise "e" } }.to raise_error("e")
    expect(mon).not_to be_mon_locked
  end

  describe "#new_cond" do
    it "waits with wait_until across processes" do
      cond = mon.new_cond
      mem = ProcessShared::SharedMemory.new(:int)
      pid = fork_child do
        mon.synchronize do
          cond.wait_until { mem.get_int(0) == 3 }
          mem.put_int(0, 4)
          cond.broadcast
        end
      end
      3.times do
        mon.synchronize do
          mem.put_int(0, mem.get_int(0) + 1)
          cond.broadcast
        end
      end
      mon.synchronize { cond.wait_while { mem.get_int(0) != 4 } }
      wait_child(pid)
    end

    it "times out with false and keeps the monitor" do
      cond = mon.new_cond
      mon.synchronize do
        mon.synchronize { expect(cond.wait(0.02)).to be(false) }
        expect(mon.mon_count).to eq(1)
      end
    end

    it "signal requires owning the monitor" do
      expect { mon.new_cond.signal }.to raise_error(ProcessShared::ProcessError)
    end
  end
end

RSpec.describe ProcessShared::MonitorMixin do
  it "extends an object with a process-shared monitor" do
    obj = +""
    obj.extend(described_class)
    expect(obj.synchronize { obj.mon_owned? }).to be(true)
    expect(obj.mon_try_enter).to be(true)
    expect(obj.try_mon_enter).to be(true)
    obj.mon_exit
    obj.mon_exit
    expect(obj.mon_locked?).to be(false)
    cond = obj.new_cond
    obj.synchronize { expect(cond.wait(0.01)).to be(false) }
  end

  it "works when included, via initialize calling super" do
    klass = Class.new do
      include ProcessShared::MonitorMixin

      attr_reader :count

      def initialize
        super
        @count = 0
      end
    end
    obj = klass.new
    h = handshake
    done = handshake
    pid = fork_child do
      obj.synchronize do
        h.signal
        done.wait
      end
    end
    h.wait
    expect(obj.mon_try_enter).to be(false)
    done.signal
    wait_child(pid)
    expect(obj.mon_try_enter).to be(true)
  end
end
