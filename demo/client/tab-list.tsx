import type { TabView } from '../server/api-types.js'

const time = (ms: number) => new Date(ms).toLocaleTimeString()

/** The live tabs of this session, pushed by the server whenever one opens or closes. */
export function TabList({ tabs, me }: { tabs: TabView[]; me: string }) {
  return (
    <section className="card">
      <h2>Tabs of this session</h2>
      <ul className="tabs" data-testid="tab-list">
        {tabs.map((tab) => {
          const you = tab.tabId === me
          return (
            <li key={tab.tabId} className={you ? 'you' : undefined} data-testid="tab-item" data-tab-id={tab.tabId} data-you={you ? 'true' : 'false'}>
              <code>{tab.tabId}</code>
              <span className="since">since {time(tab.since)}</span>
              {you && <span className="you-label">you</span>}
            </li>
          )
        })}
      </ul>
      {tabs.length === 0 && <p className="note">No tab connected.</p>}
    </section>
  )
}
