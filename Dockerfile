# The Mimir Recovery worker image (used by docker-compose.yml).
FROM node:24-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .
RUN node --import tsx worker/bundle.ts /app/dist/workflow-bundle.js
ENV MIMIR_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js NODE_ENV=production
USER node
CMD ["node", "--import", "tsx", "worker/main.ts"]
