# frozen_string_literal: true

# Scale: small primitives come from shared arena chunks, so a process can hold very many of them with no
# file descriptor each, at most 128 bytes of shared memory each, and few mappings. (A Semaphore, with its
# table of holders, takes 4 KiB of a chunk: resources_spec.rb; a ConditionVariable, with its table of
# waiters, 256 bytes, which the average over the four kinds here allows.) CI runs the full
# million (about a second); SCALE_COUNT sets another count.
RSpec.describe "scale" do
  # Shared (MAP_SHARED) mappings of this process: [count, total bytes].
  def shared_mappings
    lines = File.readlines("/proc/self/maps").select { |l| l.split[1].to_s.end_with?("s") }
    bytes = lines.sum do |l|
      from, to = l.split.first.split("-").map { |x| x.to_i(16) }
      to - from
    end
    [lines.size, bytes]
  end

  it "holds #{ENV.fetch("SCALE_COUNT", 1_000_000)} primitives without descriptors, in little memory and few mappings",
     timeout: 300 do
    count = Integer(ENV.fetch("SCALE_COUNT", 1_000_000))
    GC.start
    fds = Dir.children("/proc/self/fd").size
    maps_before, bytes_before = shared_mappings
    kinds = [ProcessShared::Mutex, ProcessShared::AtomicInteger, ProcessShared::Monitor,
             ProcessShared::ConditionVariable]
    objs = Array.new(count) { |i| kinds[i % kinds.size].new }
    maps_after, bytes_after = shared_mappings
    expect(Dir.children("/proc/self/fd").size).to be <= fds
    expect((bytes_after - bytes_before).fdiv(count)).to be <= 128
    expect(maps_after - maps_before).to be < count / 500
    # They work, and are independent of their neighbours in the arena.
    (0...count - 4).step(4 * 997) do |i|
      objs[i].synchronize { expect([objs[i + 4].locked?, objs[i + 1].value]).to eq([false, 0]) }
    end
    objs.each(&:close)
  end
end
